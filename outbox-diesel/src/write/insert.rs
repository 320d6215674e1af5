//! Inserting outbox rows: one statement per call, whatever the number of rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use outbox_core::Direction;
use serde_json::Value;

use crate::backend::DbConn;
use crate::error::Result;
use crate::schema::{control_outbox, region_outbox};
use crate::write::row::{now, the_past, OutboxRow};

#[derive(Insertable)]
#[diesel(table_name = region_outbox)]
struct NewRegionRow<'a> {
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
#[diesel(table_name = control_outbox)]
struct NewControlRow<'a> {
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

/// Rows per INSERT: far below SQLite's bound-parameter limit (32766).
const CHUNK: usize = 2_000;

/// Inserts `rows` (all of one direction) with one statement per 2,000 rows and
/// records their shards for the post-commit flush. Returns the new row ids,
/// region rows first, each direction in the order given.
pub fn insert_rows(mut db: DbConn<'_>, rows: &[OutboxRow]) -> Result<Vec<i64>> {
    let (control, region): (Vec<&OutboxRow>, Vec<&OutboxRow>) = rows.iter().partition(|r| r.region_name.is_some());
    let (stamp, past) = (now(), the_past());
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in region.chunks(CHUNK) {
        let values: Vec<NewRegionRow<'_>> = chunk
            .iter()
            .map(|r| NewRegionRow {
                shard_scope: r.shard_scope,
                shard_identifier: r.shard_identifier,
                category: r.category,
                object_identifier: r.object_identifier,
                payload: r.payload.as_ref(),
                scheduled_from: stamp,
                scheduled_for: past,
                date_added: stamp,
            })
            .collect();
        ids.extend(crate::__with_db!(db.reborrow(), |c| diesel::insert_into(region_outbox::table)
            .values(&values)
            .returning(region_outbox::id)
            .get_results::<i64>(c))?);
    }
    for chunk in control.chunks(CHUNK) {
        let values: Vec<NewControlRow<'_>> = chunk
            .iter()
            .map(|r| NewControlRow {
                shard_scope: r.shard_scope,
                shard_identifier: r.shard_identifier,
                region_name: r.region_name.as_deref().unwrap_or_default(),
                category: r.category,
                object_identifier: r.object_identifier,
                payload: r.payload.as_ref(),
                scheduled_from: stamp,
                scheduled_for: past,
                date_added: stamp,
            })
            .collect();
        ids.extend(crate::__with_db!(db.reborrow(), |c| diesel::insert_into(control_outbox::table)
            .values(&values)
            .returning(control_outbox::id)
            .get_results::<i64>(c))?);
    }
    crate::flush::record(rows);
    metrics::counter!("outbox.saved", "direction" => Direction::Region.as_str()).increment(region.len() as u64);
    metrics::counter!("outbox.saved", "direction" => Direction::Control.as_str()).increment(control.len() as u64);
    Ok(ids)
}
