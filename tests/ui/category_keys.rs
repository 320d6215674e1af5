use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

// Several mistakes in one item are all reported by one compile.
#[outbox_category]
pub enum Category {
    #[category(id = 2, scope = Scope::Organization, regoin = on_update, id = 3)]
    TeamUpdate,
    #[category(id = 3, scope = Scope::Organization, discard = true, on_poison = retry)]
    ProjectUpdate,
    #[category(scope = Scope::Organization, discard, max_attempts = 0)]
    UserUpdate,
}

fn main() {}
