//! Manual writes for categories that are not models (audit-log style events).

use diesel::prelude::*;
use outbox_core::{OutboxCategory, OutboxScope};
use serde_json::Value;

use crate::backend::OutboxConnection;
use crate::error::{Error, Result};
use crate::schema::{control_outbox, region_outbox};
use crate::write::{insert_rows, OutboxRow};

/// Writes one region outbox message of a payload-only category and returns its
/// object identifier, unique to this row so it never coalesces with another.
///
/// Joins the caller's transaction when one is open.
///
/// # Errors
/// [`Error::ScopeMismatch`] when `category` is not in `scope`; [`Error::Retired`]
/// for a retired category; database errors.
///
/// ```
/// # use outbox::prelude::*;
/// # use diesel::{Connection, SqliteConnection};
/// #[outbox_scope]
/// pub enum Scope { #[scope(id = 3)] AuditLog }
///
/// #[outbox_category]
/// pub enum Category { #[category(id = 5, scope = Scope::AuditLog, discard)] AuditLogEvent }
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// let payload = serde_json::json!({"event": "member.invite"});
/// let a = outbox::write_region_message(&mut conn, Scope::AuditLog, Category::AuditLogEvent, 7, Some(payload.clone()))?;
/// let b = outbox::write_region_message(&mut conn, Scope::AuditLog, Category::AuditLogEvent, 7, Some(payload))?;
/// assert_ne!(a, b);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_region_message<C, S, K>(
    conn: &mut C,
    scope: S,
    category: K,
    shard_identifier: i64,
    payload: Option<Value>,
) -> Result<i64>
where
    C: OutboxConnection,
    S: OutboxScope,
    K: OutboxCategory,
{
    let row = checked_row(scope, category, shard_identifier, payload, None)?;
    let id = write_unique(conn, row)?;
    crate::wake::after_write(conn);
    Ok(id)
}

/// Writes one control outbox message of a payload-only category per target
/// region; every row gets its own object identifier. Returns them in region order.
///
/// # Errors
/// As [`write_region_message`], plus [`Error::RegionName`] for a bad region name.
pub fn write_control_message<C, S, K, R>(
    conn: &mut C,
    scope: S,
    category: K,
    shard_identifier: i64,
    payload: Option<Value>,
    regions: R,
) -> Result<Vec<i64>>
where
    C: OutboxConnection,
    S: OutboxScope,
    K: OutboxCategory,
    R: IntoIterator,
    R::Item: Into<String>,
{
    let rows = regions
        .into_iter()
        .map(|region| checked_row(scope, category, shard_identifier, payload.clone(), Some(region.into())))
        .collect::<Result<Vec<_>>>()?;
    let ids = conn.transaction(|conn| rows.into_iter().map(|row| write_unique(conn, row)).collect())?;
    crate::wake::after_write(conn);
    Ok(ids)
}

fn checked_row<S: OutboxScope, K: OutboxCategory>(
    scope: S,
    category: K,
    shard_identifier: i64,
    payload: Option<Value>,
    region: Option<String>,
) -> Result<OutboxRow> {
    let info = category.info();
    if let Some(expected) = info.scope.filter(|s| s.id != scope.id()) {
        return Err(Error::ScopeMismatch { category: info.name, expected: expected.name, given: scope.info().name });
    }
    OutboxRow::new(category, shard_identifier, 0, payload, region)
}

/// The row's own id becomes its object identifier: unique across processes and
/// machines without a coordinator. Insert and update share one transaction, so
/// no worker ever sees the placeholder.
fn write_unique<C: OutboxConnection>(conn: &mut C, row: OutboxRow) -> Result<i64> {
    conn.transaction(|conn| {
        let control = row.region_name.is_some();
        let id = insert_rows(conn.db(), std::slice::from_ref(&row))?[0];
        crate::__with_db!(conn.db(), |c| if control {
            diesel::update(control_outbox::table.find(id)).set(control_outbox::object_identifier.eq(id)).execute(c)
        } else {
            diesel::update(region_outbox::table.find(id)).set(region_outbox::object_identifier.eq(id)).execute(c)
        })?;
        Ok(id)
    })
}
