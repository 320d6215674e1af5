use outbox_core::{ControlDelivery, Delivery, ReceiverError};
use serde_json::Value;

use crate::backend::DbConn;
use crate::model::OutboxModel;

/// What a region model does when its outbox rows are delivered.
///
/// Both methods must be idempotent: a message can be delivered more than once.
#[diagnostic::on_unimplemented(
    message = "`{Self}` derives `ReplicatedRegionModel` but does not implement `RegionReplication`",
    label = "implement `outbox::RegionReplication` for `{Self}`",
    note = "write `impl RegionReplication for {Self}` with `handle_async_replication` and `handle_async_deletion`"
)]
pub trait RegionReplication: OutboxModel {
    /// The row exists: replicate its current state.
    ///
    /// # Errors
    /// Any error retries the shard after a backoff.
    fn handle_async_replication(&self, cx: &mut Delivery<'_>) -> Result<(), ReceiverError>;

    /// The row is gone: remove its replicas. `payload` is what
    /// `#[outbox(payload = method)]` returned when the row was last written.
    ///
    /// # Errors
    /// Any error retries the shard after a backoff.
    fn handle_async_deletion(
        cx: &mut Delivery<'_>,
        object_identifier: i64,
        shard_identifier: i64,
        payload: Option<&Value>,
    ) -> Result<(), ReceiverError>;
}

/// What a control model does when its outbox rows are delivered to one region.
///
/// Both methods must be idempotent. `cx.region_name()` is the target region.
#[diagnostic::on_unimplemented(
    message = "`{Self}` derives `ReplicatedControlModel` but does not implement `ControlReplication`",
    label = "implement `outbox::ControlReplication` for `{Self}`",
    note = "write `impl ControlReplication for {Self}` with `handle_async_replication` and `handle_async_deletion`"
)]
pub trait ControlReplication: OutboxModel {
    /// The row exists: replicate its current state to `cx.region_name()`.
    ///
    /// # Errors
    /// Any error retries the shard after a backoff.
    fn handle_async_replication(&self, cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError>;

    /// The row is gone: remove its replicas in `cx.region_name()`.
    ///
    /// # Errors
    /// Any error retries the shard after a backoff.
    fn handle_async_deletion(
        cx: &mut ControlDelivery<'_>,
        object_identifier: i64,
        shard_identifier: i64,
        payload: Option<&Value>,
    ) -> Result<(), ReceiverError>;
}

fn reload<M: OutboxModel>(cx: &mut Delivery<'_>) -> Result<Option<M>, ReceiverError> {
    let object = cx.message().object_identifier;
    let db = DbConn::from_any(cx.connection_any())
        .ok_or_else(|| ReceiverError::msg("the outbox connection is neither SQLite nor PostgreSQL"))?;
    Ok(M::__outbox_load(object, db)?)
}

/// The receiver registered for a region model: reload the row by id, then
/// replicate it or, when gone, replicate its deletion.
///
/// # Errors
/// A database error while reloading, or the model's own error.
pub fn receive_region_model<M: RegionReplication>(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    match reload::<M>(cx)? {
        Some(model) => model.handle_async_replication(cx),
        None => {
            let message = cx.message();
            M::handle_async_deletion(cx, message.object_identifier, message.shard_identifier, message.payload.as_ref())
        }
    }
}

/// The receiver registered for a control model (see [`receive_region_model`]).
///
/// # Errors
/// A database error while reloading, or the model's own error.
pub fn receive_control_model<M: ControlReplication>(cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
    match reload::<M>(cx)? {
        Some(model) => model.handle_async_replication(cx),
        None => {
            let message = cx.message();
            M::handle_async_deletion(cx, message.object_identifier, message.shard_identifier, message.payload.as_ref())
        }
    }
}
