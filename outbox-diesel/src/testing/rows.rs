//! Looking at and writing raw outbox rows in tests.

use outbox_core::Direction;

use crate::backend::OutboxConnection;
use crate::error::Result;
use crate::rows::{pending_rows, StoredRow};
use crate::write::{insert_rows, OutboxRow};

/// Writes rows as given, bypassing category checks (e.g. rows of a category
/// this binary does not know, as a newer version would write them). Returns their ids.
///
/// # Errors
/// Database errors.
pub fn insert_raw_rows<C: OutboxConnection>(conn: &mut C, rows: &[OutboxRow]) -> Result<Vec<i64>> {
    insert_rows(conn.db(), rows)
}

/// A region row of `category` about `object` in shard (`scope`, `shard`).
pub fn region_row(scope: i32, shard: i64, category: i32, object: i64, payload: Option<serde_json::Value>) -> OutboxRow {
    OutboxRow {
        shard_scope: scope,
        shard_identifier: shard,
        category,
        object_identifier: object,
        payload,
        region_name: None,
    }
}

/// A control row for `region`.
pub fn control_row(scope: i32, shard: i64, category: i32, object: i64, region: &str) -> OutboxRow {
    OutboxRow {
        shard_scope: scope,
        shard_identifier: shard,
        category,
        object_identifier: object,
        payload: None,
        region_name: Some(region.to_string()),
    }
}

/// Rows still in the outboxes (both directions), optionally of one category.
///
/// # Panics
/// On a database error.
pub fn pending<C: OutboxConnection>(conn: &mut C, category: Option<i32>) -> Vec<StoredRow> {
    pending_rows(conn)
        .expect("read outbox rows")
        .into_iter()
        .filter(|r| category.is_none_or(|c| r.category == c))
        .collect()
}

/// Asserts that no outbox row is left.
///
/// # Panics
/// Listing the rows left.
#[track_caller]
pub fn assert_no_pending<C: OutboxConnection>(conn: &mut C) {
    let rows = pending(conn, None);
    assert!(rows.is_empty(), "expected no pending outbox rows, found {}:\n{}", rows.len(), describe(&rows));
}

/// Asserts how many rows of `direction` and `category` are pending.
///
/// # Panics
/// When the count differs, listing the rows.
#[track_caller]
pub fn assert_pending<C: OutboxConnection>(conn: &mut C, direction: Direction, category: i32, expected: usize) {
    let rows: Vec<StoredRow> = pending(conn, Some(category)).into_iter().filter(|r| r.direction == direction).collect();
    assert_eq!(rows.len(), expected, "pending {direction} rows of category {category}:\n{}", describe(&rows));
}

fn describe(rows: &[StoredRow]) -> String {
    rows.iter()
        .take(20)
        .map(|r| {
            format!(
                "  {} #{} scope {} shard {}{} category {} object {}",
                r.direction,
                r.id,
                r.shard_scope,
                r.shard_identifier,
                r.region_name.as_ref().map(|n| format!(" region {n}")).unwrap_or_default(),
                r.category,
                r.object_identifier
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
