use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
    #[scope(id = 1)]
    User,
    #[scope(id = 0)]
    Team,
}

fn main() {}
