use std::any::{type_name, Any};

use crate::{Message, ReceiverError, Resources};

/// What a receiver gets: the message, the worker's resources, and a connection
/// to the database that holds the outbox (for reloading a model, or for writes
/// that must be exactly-once with a transactional category).
pub struct Delivery<'a> {
    message: &'a Message,
    resources: &'a Resources,
    connection: &'a mut dyn Any,
}

impl<'a> Delivery<'a> {
    /// Built by the drain engine (and by tests that call a receiver directly).
    /// `connection` is the outbox database's connection, e.g. a
    /// `&mut diesel::SqliteConnection`.
    pub fn new(message: &'a Message, resources: &'a Resources, connection: &'a mut dyn Any) -> Self {
        Delivery { message, resources, connection }
    }

    /// The message being delivered.
    pub fn message(&self) -> &'a Message {
        self.message
    }

    /// The resource of type `T` registered on the worker.
    ///
    /// # Errors
    /// Names the missing type and how to register it.
    pub fn resource<T: Send + Sync + 'static>(&self) -> Result<&'a T, ReceiverError> {
        self.resources.get::<T>().ok_or_else(|| {
            ReceiverError::msg(format!(
                "resource `{}` is not registered on the worker; add it with `Worker::builder(pool).resource(value)`",
                type_name::<T>()
            ))
        })
    }

    /// The outbox database's connection, as its concrete type
    /// (`diesel::SqliteConnection` or `diesel::PgConnection`).
    ///
    /// # Errors
    /// When the worker drains a database of another backend.
    pub fn connection<C: Any>(&mut self) -> Result<&mut C, ReceiverError> {
        self.connection
            .downcast_mut::<C>()
            .ok_or_else(|| ReceiverError::msg(format!("the outbox connection is not a `{}`", type_name::<C>())))
    }

    /// The connection as `dyn Any`, for backend dispatch.
    pub fn connection_any(&mut self) -> &mut dyn Any {
        self.connection
    }
}

/// What a control receiver gets: a [`Delivery`] plus the target region.
pub struct ControlDelivery<'a> {
    delivery: Delivery<'a>,
    region_name: &'a str,
}

impl<'a> ControlDelivery<'a> {
    /// Built by the drain engine for control rows.
    pub fn new(delivery: Delivery<'a>, region_name: &'a str) -> Self {
        ControlDelivery { delivery, region_name }
    }

    /// The region this row is addressed to.
    pub fn region_name(&self) -> &'a str {
        self.region_name
    }
}

impl<'a> std::ops::Deref for ControlDelivery<'a> {
    type Target = Delivery<'a>;
    fn deref(&self) -> &Delivery<'a> {
        &self.delivery
    }
}

impl<'a> std::ops::DerefMut for ControlDelivery<'a> {
    fn deref_mut(&mut self) -> &mut Delivery<'a> {
        &mut self.delivery
    }
}
