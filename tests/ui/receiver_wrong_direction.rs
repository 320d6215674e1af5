use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

#[outbox_category]
pub enum Category {
    #[category(id = 2, scope = Scope::Organization, region = on_control)]
    TeamUpdate,
}

fn on_control(_cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
    Ok(())
}

fn main() {}
