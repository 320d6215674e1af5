use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

#[outbox_category]
pub enum Category {
    #[category(id = 4, retired, scope = Scope::Organization, region = on_update)]
    OldUpdate,
}

fn on_update(_cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    Ok(())
}

fn main() {}
