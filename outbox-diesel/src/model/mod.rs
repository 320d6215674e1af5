//! Replicated models: what `#[derive(ReplicatedRegionModel)]` and
//! `#[derive(ReplicatedControlModel)]` implement, and the save/delete/bulk hooks
//! every model gets from it.

#[doc(hidden)]
pub mod assert;
mod hooks;
mod receive;

pub use hooks::OutboxModel;
pub use receive::{receive_control_model, receive_region_model, ControlReplication, RegionReplication};
