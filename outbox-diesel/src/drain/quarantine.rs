//! Dead letters: listing, retrying (redrive) and discarding quarantined groups.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use outbox_core::Direction;
use serde_json::Value;

use super::sql;
use super::DrainError;
use crate::backend::{DbConn, OutboxConnection};
use crate::flush::ShardKey;
use crate::schema::outbox_quarantine;
use crate::write::row::{now, the_past};

/// A message group that failed `max_attempts` times, as stored in `outbox_quarantine`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedGroup {
    /// Its id in `outbox_quarantine` (pass it to [`retry_quarantined`] / [`discard_quarantined`]).
    pub id: i64,
    /// The shard it came from.
    pub shard: ShardKey,
    /// Category id.
    pub category: i32,
    /// Object identifier.
    pub object_identifier: i64,
    /// Payload of the newest row.
    pub payload: Option<Value>,
    /// Lowest row id of the group.
    pub first_row_id: i64,
    /// Highest (delivered) row id of the group.
    pub last_row_id: i64,
    /// Rows the group stood for.
    pub row_count: i32,
    /// When the oldest row was written.
    pub date_added: NaiveDateTime,
    /// Failed attempts.
    pub attempts: i32,
    /// The last receiver error.
    pub last_error: String,
    /// When it was quarantined.
    pub quarantined_at: NaiveDateTime,
    /// Whether it blocks the rest of its shard (`on_poison = block`).
    pub blocking: bool,
}

/// A row of `outbox_quarantine`, in column order.
type Tuple = (
    i64,
    i32,
    i32,
    i64,
    String,
    i32,
    i64,
    Option<Value>,
    i64,
    i64,
    i32,
    NaiveDateTime,
    i32,
    String,
    NaiveDateTime,
    bool,
);

/// Every quarantined group, oldest first.
///
/// ```
/// # use diesel::{Connection, SqliteConnection};
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// assert!(outbox::drain::list_quarantined(&mut conn)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Database errors.
pub fn list_quarantined<C: OutboxConnection>(conn: &mut C) -> Result<Vec<QuarantinedGroup>, DrainError> {
    let rows: Vec<Tuple> = crate::__with_db!(conn.db(), |c| outbox_quarantine::table
        .select(outbox_quarantine::all_columns)
        .order(outbox_quarantine::id)
        .load(c))?;
    Ok(rows.into_iter().map(group).collect())
}

fn group(r: Tuple) -> QuarantinedGroup {
    QuarantinedGroup {
        id: r.0,
        shard: ShardKey {
            direction: Direction::from_code(r.1).unwrap_or(Direction::Region),
            shard_scope: r.2,
            shard_identifier: r.3,
            region_name: r.4,
        },
        category: r.5,
        object_identifier: r.6,
        payload: r.7,
        first_row_id: r.8,
        last_row_id: r.9,
        row_count: r.10,
        date_added: r.11,
        attempts: r.12,
        last_error: r.13,
        quarantined_at: r.14,
        blocking: r.15,
    }
}

/// Moves a quarantined group back into its outbox, due at once, and clears its
/// shard's backoff, in one transaction; workers deliver it on their next pass.
///
/// The group comes back as one row (its newest payload: what coalescing would
/// have delivered) under its old highest id when that id is free, so it keeps its
/// place before rows written to the shard since. Returns the group and the id of
/// the row written, or `None` when no group has this id.
///
/// # Errors
/// Database errors.
pub fn retry_quarantined<C: OutboxConnection>(
    conn: &mut C,
    id: i64,
) -> Result<Option<(QuarantinedGroup, i64)>, DrainError> {
    let retried = conn.transaction(|conn| -> Result<_, DrainError> {
        let Some(group) = take(conn.db(), id)? else { return Ok(None) };
        let row_id = reinsert(conn.db(), &group)?;
        clear_backoff(conn.db(), &group.shard)?;
        Ok(Some((group, row_id)))
    })?;
    if retried.is_some() {
        crate::wake::notify();
    }
    Ok(retried)
}

/// Deletes a quarantined group for good and clears its shard's backoff, so a
/// shard it was blocking goes on. Returns the group, or `None` when no group has
/// this id.
///
/// # Errors
/// Database errors.
pub fn discard_quarantined<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<Option<QuarantinedGroup>, DrainError> {
    let discarded = conn.transaction(|conn| -> Result<_, DrainError> {
        let Some(group) = take(conn.db(), id)? else { return Ok(None) };
        clear_backoff(conn.db(), &group.shard)?;
        Ok(Some(group))
    })?;
    if discarded.is_some() {
        crate::wake::notify();
    }
    Ok(discarded)
}

/// Removes one group from `outbox_quarantine`, returning it.
fn take(mut db: DbConn<'_>, id: i64) -> diesel::QueryResult<Option<QuarantinedGroup>> {
    let row: Option<Tuple> = crate::__with_db!(db.reborrow(), |c| outbox_quarantine::table
        .find(id)
        .select(outbox_quarantine::all_columns)
        .first(c)
        .optional())?;
    let Some(group) = row.map(group) else { return Ok(None) };
    crate::__with_db!(db.reborrow(), |c| diesel::delete(outbox_quarantine::table.find(id)).execute(c))?;
    Ok(Some(group))
}

/// Writes the group back as one row; returns its id.
fn reinsert(db: DbConn<'_>, g: &QuarantinedGroup) -> diesel::QueryResult<i64> {
    let (stamp, past) = (now(), the_past());
    let shard = &g.shard;
    macro_rules! insert {
        ($db:expr, $table:ident, $($region:expr)?) => {{
            use crate::schema::$table::dsl as t;
            let mut db = $db;
            let free: i64 = crate::__with_db!(db.reborrow(), |c| t::$table.filter(t::id.eq(g.last_row_id)).count().get_result(c))?;
            let values = (
                t::shard_scope.eq(shard.shard_scope),
                t::shard_identifier.eq(shard.shard_identifier),
                $(t::region_name.eq($region),)?
                t::category.eq(g.category),
                t::object_identifier.eq(g.object_identifier),
                t::payload.eq(g.payload.as_ref()),
                t::scheduled_from.eq(stamp),
                t::scheduled_for.eq(past),
                t::date_added.eq(g.date_added),
            );
            if free == 0 {
                crate::__with_db!(db, |c| diesel::insert_into(t::$table)
                    .values((t::id.eq(g.last_row_id), values))
                    .returning(t::id)
                    .get_result(c))
            } else {
                crate::__with_db!(db, |c| diesel::insert_into(t::$table).values(values).returning(t::id).get_result(c))
            }
        }};
    }
    match shard.direction {
        Direction::Region => insert!(db, region_outbox,),
        Direction::Control => insert!(db, control_outbox, &shard.region_name),
    }
}

/// A fresh start for the shard: its failure state goes, unless a worker holds
/// its lease right now.
fn clear_backoff(mut db: DbConn<'_>, shard: &ShardKey) -> diesel::QueryResult<usize> {
    sql::exec(&mut db, &format!("DELETE FROM outbox_shard WHERE {} AND lease_owner IS NULL", state(shard)))
}

fn state(shard: &ShardKey) -> String {
    sql::state_match(shard.direction, shard)
}
