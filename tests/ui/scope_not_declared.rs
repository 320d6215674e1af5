use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

pub enum NotAScope {
    Organization,
}

#[outbox_category]
pub enum Category {
    #[category(id = 2, scope = NotAScope::Organization, discard)]
    TeamUpdate,
    #[category(id = 3, scope = Scope::Project, discard)]
    ProjectUpdate,
}

fn main() {}
