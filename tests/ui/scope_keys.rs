use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0, name = "org")]
    Organization,
    User,
    #[scope(id = "two")]
    Team,
}

fn main() {}
