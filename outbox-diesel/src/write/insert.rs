//! Inserting outbox rows: one statement per call, whatever the number of rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use outbox_core::Direction;
use serde_json::Value;

use crate::backend::DbConn;
use crate::error::Result;
use crate::schema::{control_outbox, region_outbox};
use crate::write::row::{now, the_past, OutboxRow};

// `treat_none_as_default_value = false`: a missing payload binds NULL instead
// of `DEFAULT`, which SQLite rejects in multi-row VALUES (Diesel would then fall
// back to one INSERT per row).
#[derive(Insertable)]
#[diesel(table_name = region_outbox, treat_none_as_default_value = false)]
pub(crate) struct NewRegionRow<'a> {
    shard_scope: i32,
    shard_identifier: i64,
    category: i32,
    object_identifier: i64,
    payload: Option<&'a Value>,
    scheduled_from: NaiveDateTime,
    scheduled_for: NaiveDateTime,
    date_added: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = control_outbox, treat_none_as_default_value = false)]
pub(crate) struct NewControlRow<'a> {
    shard_scope: i32,
    shard_identifier: i64,
    region_name: &'a str,
    category: i32,
    object_identifier: i64,
    payload: Option<&'a Value>,
    scheduled_from: NaiveDateTime,
    scheduled_for: NaiveDateTime,
    date_added: NaiveDateTime,
}

/// Rows per INSERT: far below the bound-parameter limits (SQLite 32766, PostgreSQL 65535).
pub(crate) const CHUNK: usize = 2_000;

/// The rows of one outbox table, ready to bind.
pub(crate) enum Values<'a> {
    Region(Vec<NewRegionRow<'a>>),
    Control(Vec<NewControlRow<'a>>),
}

/// Splits rows by outbox table (region rows first), stamped with one `now`.
pub(crate) fn values(rows: &[OutboxRow]) -> [Values<'_>; 2] {
    let (stamp, past) = (now(), the_past());
    let mut region = Vec::new();
    let mut control = Vec::new();
    for r in rows {
        match r.region_name.as_deref() {
            None => region.push(NewRegionRow {
                shard_scope: r.shard_scope,
                shard_identifier: r.shard_identifier,
                category: r.category,
                object_identifier: r.object_identifier,
                payload: r.payload.as_ref(),
                scheduled_from: stamp,
                scheduled_for: past,
                date_added: stamp,
            }),
            Some(region_name) => control.push(NewControlRow {
                shard_scope: r.shard_scope,
                shard_identifier: r.shard_identifier,
                region_name,
                category: r.category,
                object_identifier: r.object_identifier,
                payload: r.payload.as_ref(),
                scheduled_from: stamp,
                scheduled_for: past,
                date_added: stamp,
            }),
        }
    }
    [Values::Region(region), Values::Control(control)]
}

/// Bookkeeping after rows are written: the post-commit flush and the counters.
pub(crate) fn written(rows: &[OutboxRow]) {
    crate::flush::record(rows);
    let control = rows.iter().filter(|r| r.region_name.is_some()).count();
    metrics::counter!("outbox.saved", "direction" => Direction::Region.as_str())
        .increment((rows.len() - control) as u64);
    metrics::counter!("outbox.saved", "direction" => Direction::Control.as_str()).increment(control as u64);
}

/// Inserts `rows` with one statement per outbox table (per 2,000 rows) and
/// records their shards for the post-commit flush. Returns the new row ids,
/// region rows first, each direction in the order given.
pub fn insert_rows(mut db: DbConn<'_>, rows: &[OutboxRow]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(rows.len());
    for table in values(rows) {
        match table {
            Values::Region(values) => {
                for chunk in values.chunks(CHUNK) {
                    ids.extend(crate::__with_db!(db.reborrow(), |c| diesel::insert_into(region_outbox::table)
                        .values(chunk)
                        .returning(region_outbox::id)
                        .get_results::<i64>(c))?);
                }
            }
            Values::Control(values) => {
                for chunk in values.chunks(CHUNK) {
                    ids.extend(crate::__with_db!(db.reborrow(), |c| diesel::insert_into(control_outbox::table)
                        .values(chunk)
                        .returning(control_outbox::id)
                        .get_results::<i64>(c))?);
                }
            }
        }
    }
    written(rows);
    Ok(ids)
}
