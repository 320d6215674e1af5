//! Database-free core of the `outbox` framework.
//!
//! This crate holds what does not need a database: the declared scopes and
//! categories, the link-time registry of receivers, the message handed to a
//! receiver, and the policies (backoff, flush, poison handling) the drain
//! engine applies. Users depend on the `outbox` facade, which re-exports it.

mod backoff;
mod category;
mod delivery;
mod direction;
mod error;
mod flush;
mod message;
mod receiver;
mod registry;
mod resources;
mod scope;

pub use backoff::Backoff;
pub use category::{find_category, CategoryInfo, CategoryRegistration, OutboxCategory, PoisonPolicy};
pub use delivery::{ControlDelivery, Delivery};
pub use direction::Direction;
pub use error::ReceiverError;
pub use flush::FlushPolicy;
pub use message::Message;
pub use receiver::{
    ControlReceiverFn, IsControlReceiver, IsRegionReceiver, Receiver, ReceiverRegistration, RegionReceiverFn,
};
pub use registry::{registry, Registry, RegistryError, RegistryProblem};
pub use resources::Resources;
pub use scope::{find_scope, OutboxScope, ScopeInfo, ScopeRegistration};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
