use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

#[outbox_category]
pub enum Category {
    #[category(id = 2, scope = Scope::Organization, discard)]
    TeamUpdate,
    #[category(id = 2, scope = Scope::Organization, discard)]
    ProjectUpdate,
}

fn main() {}
