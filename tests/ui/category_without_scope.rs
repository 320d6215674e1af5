use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

#[outbox_category]
pub enum Category {
    #[category(id = 2, discard)]
    TeamUpdate,
}

fn main() {}
