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

/// Functions usable as `region = path` receivers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a region receiver",
    label = "expected `fn(&mut Delivery<'_>) -> Result<(), ReceiverError>`",
    note = "region receivers take `&mut outbox::Delivery<'_>`; control receivers (`control = ...`) take `&mut outbox::ControlDelivery<'_>`"
)]
pub trait IsRegionReceiver {
    /// The function pointer to register.
    fn into_receiver(self) -> RegionReceiverFn;
}

impl<F: Into<RegionReceiverFn>> IsRegionReceiver for F {
    fn into_receiver(self) -> RegionReceiverFn {
        self.into()
    }
}

/// Functions usable as `control = path` receivers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a control receiver",
    label = "expected `fn(&mut ControlDelivery<'_>) -> Result<(), ReceiverError>`",
    note = "control receivers take `&mut outbox::ControlDelivery<'_>`; region receivers (`region = ...`) take `&mut outbox::Delivery<'_>`"
)]
pub trait IsControlReceiver {
    /// The function pointer to register.
    fn into_receiver(self) -> ControlReceiverFn;
}

impl<F: Into<ControlReceiverFn>> IsControlReceiver for F {
    fn into_receiver(self) -> ControlReceiverFn {
        self.into()
    }
}
