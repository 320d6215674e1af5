//! Reading outbox rows back: for tests, the quickstart and the inspector.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use outbox_core::Direction;
use serde_json::Value;

use crate::backend::OutboxConnection;
use crate::error::Result;
use crate::schema::{control_outbox, region_outbox};

/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// Which outbox table holds it.
    pub direction: Direction,
    /// `id`.
    pub id: i64,
    /// `shard_scope`.
    pub shard_scope: i32,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// `region_name` (control rows only).
    pub region_name: Option<String>,
    /// `category`.
    pub category: i32,
    /// `object_identifier`.
    pub object_identifier: i64,
    /// `payload`.
    pub payload: Option<Value>,
    /// `scheduled_from`.
    pub scheduled_from: NaiveDateTime,
    /// `scheduled_for`.
    pub scheduled_for: NaiveDateTime,
    /// `date_added`.
    pub date_added: NaiveDateTime,
}

type RegionTuple = (i64, i32, i64, i32, i64, Option<Value>, NaiveDateTime, NaiveDateTime, NaiveDateTime);
type ControlTuple = (i64, i32, i64, String, i32, i64, Option<Value>, NaiveDateTime, NaiveDateTime, NaiveDateTime);

/// Every row of both outbox tables, region rows first, each in id order.
///
/// # Errors
/// Database errors (e.g. tables missing: run `outbox::migrate`).
pub fn pending_rows<C: OutboxConnection>(conn: &mut C) -> Result<Vec<StoredRow>> {
    let region: Vec<RegionTuple> =
        crate::__with_db!(conn.db(), |c| region_outbox::table.order(region_outbox::id).load(c))?;
    let control: Vec<ControlTuple> = crate::__with_db!(conn.db(), |c| control_outbox::table
        .select((
            control_outbox::id,
            control_outbox::shard_scope,
            control_outbox::shard_identifier,
            control_outbox::region_name,
            control_outbox::category,
            control_outbox::object_identifier,
            control_outbox::payload,
            control_outbox::scheduled_from,
            control_outbox::scheduled_for,
            control_outbox::date_added,
        ))
        .order(control_outbox::id)
        .load(c))?;
    let region = region.into_iter().map(|r| StoredRow {
        direction: Direction::Region,
        id: r.0,
        shard_scope: r.1,
        shard_identifier: r.2,
        region_name: None,
        category: r.3,
        object_identifier: r.4,
        payload: r.5,
        scheduled_from: r.6,
        scheduled_for: r.7,
        date_added: r.8,
    });
    let control = control.into_iter().map(|r| StoredRow {
        direction: Direction::Control,
        id: r.0,
        shard_scope: r.1,
        shard_identifier: r.2,
        region_name: Some(r.3),
        category: r.4,
        object_identifier: r.5,
        payload: r.6,
        scheduled_from: r.7,
        scheduled_for: r.8,
        date_added: r.9,
    });
    Ok(region.chain(control).collect())
}
