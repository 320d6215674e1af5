//! Compile-time checks that generated model code asserts, so a model missing a
//! Diesel derive gets a message naming the derive rather than a wall of Diesel
//! trait errors. Not a public API: `#[derive(ReplicatedRegionModel)]` and
//! `#[derive(ReplicatedControlModel)]` use them through `outbox::__private`.

use diesel::query_builder::AsChangeset;
use diesel::{Insertable, Selectable};

/// `&Model` is insertable into its table: `save()` and `bulk_create()` insert it.
#[diagnostic::on_unimplemented(
    message = "replicated model `{Self}` does not derive Diesel's `Insertable`",
    label = "add `Insertable` to the `#[derive(...)]` of `{Self}`",
    note = "`save()` and `bulk_create()` insert the model into its `#[diesel(table_name = ...)]` table"
)]
pub trait DerivesInsertable<Tab> {}

// Bounds on `T` itself (the derives implement `T` and `&T` alike): rustc shows
// this trait's message only when the failing bound has the same `Self` type.
impl<T, Tab> DerivesInsertable<Tab> for T where T: Insertable<Tab> {}

/// `&Model` is a changeset of its table: `save()` and `update()` write it.
#[diagnostic::on_unimplemented(
    message = "replicated model `{Self}` does not derive Diesel's `AsChangeset`",
    label = "add `AsChangeset` to the `#[derive(...)]` of `{Self}`",
    note = "`save()` and `update()` write every column but the primary key with `#[derive(AsChangeset)]`"
)]
pub trait DerivesAsChangeset<Tab> {}

impl<T, Tab> DerivesAsChangeset<Tab> for T where T: AsChangeset<Target = Tab> {}

/// The model selects its own columns on every enabled backend: receivers reload it.
#[diagnostic::on_unimplemented(
    message = "replicated model `{Self}` does not derive Diesel's `Selectable`",
    label = "add `Selectable` to the `#[derive(...)]` of `{Self}`",
    note = "receivers reload the model by id with `Model::as_select()`"
)]
pub trait DerivesSelectable {}

/// The model can be built from a row of its selected columns: receivers reload it.
#[diagnostic::on_unimplemented(
    message = "replicated model `{Self}` does not derive Diesel's `Queryable`",
    label = "add `Queryable` to the `#[derive(...)]` of `{Self}`",
    note = "receivers reload the model by id and build it from the row with `#[derive(Queryable)]`"
)]
pub trait DerivesQueryable {}

// One impl per combination of enabled backends: generated code lives in the
// user's crate, whose features say nothing about which backends outbox-diesel has.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
impl<T> DerivesSelectable for T where T: Selectable<diesel::sqlite::Sqlite> + Selectable<diesel::pg::Pg> {}
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
impl<T> DerivesSelectable for T where T: Selectable<diesel::sqlite::Sqlite> {}
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
impl<T> DerivesSelectable for T where T: Selectable<diesel::pg::Pg> {}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
impl<T> DerivesQueryable for T where T: LoadsAsSelect<diesel::sqlite::Sqlite> + LoadsAsSelect<diesel::pg::Pg> {}
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
impl<T> DerivesQueryable for T where T: LoadsAsSelect<diesel::sqlite::Sqlite> {}
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
impl<T> DerivesQueryable for T where T: LoadsAsSelect<diesel::pg::Pg> {}

/// `table.select(T::as_select()).load::<T>(conn)` type-checks on backend `DB`.
/// (It needs `Selectable` too, so a model missing both derives hears of both.)
pub trait LoadsAsSelect<DB: diesel::backend::Backend> {}

impl<T, DB> LoadsAsSelect<DB> for T
where
    DB: diesel::backend::Backend,
    T: Selectable<DB>
        + diesel::deserialize::FromSqlRow<diesel::dsl::SqlTypeOf<<T as Selectable<DB>>::SelectExpression>, DB>,
{
}

/// Asserts [`DerivesInsertable`] (generated code calls these in a `const`).
pub const fn insertable<T: DerivesInsertable<Tab>, Tab>() {}
/// Asserts [`DerivesAsChangeset`].
pub const fn as_changeset<T: DerivesAsChangeset<Tab>, Tab>() {}
/// Asserts [`DerivesSelectable`].
pub const fn selectable<T: DerivesSelectable>() {}
/// Asserts [`DerivesQueryable`].
pub const fn queryable<T: DerivesQueryable>() {}

/// The category of a model whose `#[outbox]` attribute has errors: the derive
/// still implements `OutboxModel` (with this uninhabited category) so that the
/// user sees the attribute's errors and not every use of the model failing too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCategory {}

impl outbox_core::OutboxCategory for NoCategory {
    const ALL: &'static [Self] = &[];
    const INFOS: &'static [outbox_core::CategoryInfo] = &[];
    fn id(self) -> i32 {
        match self {}
    }
    fn info(self) -> &'static outbox_core::CategoryInfo {
        match self {}
    }
}

/// Calls a `region = path` receiver. Generated code registers a wrapper that
/// calls this instead of coercing `path` to a function pointer, so a wrong
/// signature is one error (this bound) rather than two.
///
/// # Errors
/// The receiver's.
pub fn call_region<F>(receiver: F, cx: &mut outbox_core::Delivery<'_>) -> Result<(), outbox_core::ReceiverError>
where
    F: outbox_core::IsRegionReceiver + Fn(&mut outbox_core::Delivery<'_>) -> Result<(), outbox_core::ReceiverError>,
{
    receiver(cx)
}

/// Calls a `control = path` receiver (see [`call_region`]).
///
/// # Errors
/// The receiver's.
pub fn call_control<F>(receiver: F, cx: &mut outbox_core::ControlDelivery<'_>) -> Result<(), outbox_core::ReceiverError>
where
    F: outbox_core::IsControlReceiver
        + Fn(&mut outbox_core::ControlDelivery<'_>) -> Result<(), outbox_core::ReceiverError>,
{
    receiver(cx)
}
