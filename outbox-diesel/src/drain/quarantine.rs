//! Dead letters: listing, retrying (redrive) and discarding quarantined groups.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use outbox_core::Direction;
use serde_json::Value;

use super::sql;
use super::DrainError;
use crate::backend::OutboxConnection;
use crate::flush::ShardKey;
use crate::schema::outbox_quarantine;

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
    use outbox_quarantine::dsl as q;
    let rows: Vec<Tuple> = crate::__with_db!(conn.db(), |c| q::outbox_quarantine
        .select((
            q::id,
            q::direction,
            q::shard_scope,
            q::shard_identifier,
            q::region_name,
            q::category,
            q::object_identifier,
            q::payload,
            q::first_row_id,
            q::last_row_id,
            q::row_count,
            q::date_added,
            q::attempts,
            q::last_error,
            q::quarantined_at,
            q::blocking,
        ))
        .order(q::id)
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|r| QuarantinedGroup {
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
        })
        .collect())
}

/// Moves a quarantined group back into its outbox (one row, the newest, under
/// its original id so it keeps its place in the shard's order) and unblocks the
/// shard. Workers deliver it on their next pass. Returns whether the group existed.
///
/// # Errors
/// Database errors.
pub fn retry_quarantined<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<bool, DrainError> {
    let groups = list_quarantined(conn)?;
    let Some(group) = groups.into_iter().find(|g| g.id == id) else { return Ok(false) };
    let mut db = conn.db();
    let backend = db.backend();
    let direction = group.shard.direction;
    let (columns, region) = match direction {
        Direction::Region => ("", ""),
        Direction::Control => (", region_name", ", q.region_name"),
    };
    let insert = format!(
        "INSERT INTO {table} (id, shard_scope, shard_identifier{columns}, category, object_identifier, payload,
            scheduled_from, scheduled_for, date_added)
         SELECT q.last_row_id, q.shard_scope, q.shard_identifier{region}, q.category, q.object_identifier, q.payload,
            {past}, {past}, q.date_added
         FROM outbox_quarantine q WHERE q.id = {id}",
        table = direction.table(),
        past = sql::ts(backend, crate::write::row::the_past()),
    );
    sql::write_tx(&mut db, |db| -> Result<(), diesel::result::Error> {
        sql::exec(db, &insert)?;
        sql::exec(db, &format!("DELETE FROM outbox_quarantine WHERE id = {id}"))?;
        // A fresh start: no backoff left over from before the quarantine.
        sql::exec(db, &format!("DELETE FROM outbox_shard WHERE {} AND lease_owner IS NULL", state(&group.shard)))?;
        Ok(())
    })?;
    crate::wake::notify();
    Ok(true)
}

/// Deletes a quarantined group for good and unblocks its shard. Returns whether it existed.
///
/// # Errors
/// Database errors.
pub fn discard_quarantined<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<bool, DrainError> {
    let n = crate::__with_db!(conn.db(), |c| diesel::delete(outbox_quarantine::table.find(id)).execute(c))?;
    if n > 0 {
        crate::wake::notify();
    }
    Ok(n > 0)
}

fn state(shard: &ShardKey) -> String {
    sql::state_match(shard.direction, shard)
}
