use crate::{ControlDelivery, Delivery, Direction, ReceiverError};

/// A receiver of region outbox rows.
pub type RegionReceiverFn = fn(&mut Delivery<'_>) -> Result<(), ReceiverError>;
/// A receiver of control outbox rows: it also learns the target region.
pub type ControlReceiverFn = fn(&mut ControlDelivery<'_>) -> Result<(), ReceiverError>;

/// A receiver function, typed by the outbox it drains.
#[derive(Debug, Clone, Copy)]
pub enum Receiver {
    /// Receives `region_outbox` rows.
    Region(RegionReceiverFn),
    /// Receives `control_outbox` rows.
    Control(ControlReceiverFn),
}

impl Receiver {
    /// The outbox this receiver drains.
    pub const fn direction(&self) -> Direction {
        match self {
            Receiver::Region(_) => Direction::Region,
            Receiver::Control(_) => Direction::Control,
        }
    }
}

/// Link-time registration of a receiver, submitted by `#[outbox_category]`
/// (`region = path`, `control = path`) and by the model derives.
#[derive(Debug)]
pub struct ReceiverRegistration {
    /// The category id it receives.
    pub category: i32,
    /// The function called per delivery.
    pub receiver: Receiver,
    /// A readable name (the path given, or the model type), for reports.
    pub name: &'static str,
    /// `module_path!()` where it was registered, to name duplicates.
    pub registered_in: &'static str,
}

impl ReceiverRegistration {
    /// The outbox whose rows it receives.
    pub const fn direction(&self) -> Direction {
        self.receiver.direction()
    }
}

inventory::collect!(ReceiverRegistration);

/// Functions usable as `region = path` receivers; generated code checks it so
/// a wrong signature gets this message rather than a type mismatch.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a region receiver",
    label = "expected `fn(&mut Delivery<'_>) -> Result<(), ReceiverError>`",
    note = "region receivers take `&mut outbox::Delivery<'_>`; control receivers (`control = ...`) take `&mut outbox::ControlDelivery<'_>`"
)]
pub trait IsRegionReceiver {}

impl<F> IsRegionReceiver for F where F: for<'a, 'b> Fn(&'a mut Delivery<'b>) -> Result<(), ReceiverError> {}

/// Functions usable as `control = path` receivers (see [`IsRegionReceiver`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a control receiver",
    label = "expected `fn(&mut ControlDelivery<'_>) -> Result<(), ReceiverError>`",
    note = "control receivers take `&mut outbox::ControlDelivery<'_>`; region receivers (`region = ...`) take `&mut outbox::Delivery<'_>`"
)]
pub trait IsControlReceiver {}

impl<F> IsControlReceiver for F where F: for<'a, 'b> Fn(&'a mut ControlDelivery<'b>) -> Result<(), ReceiverError> {}
