//! The report types. Ids are always present; names are filled in by
//! `with_registry` and are `null` in JSON when the registry does not know them.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use outbox_core::{Direction, Registry};
use serde::Serialize;
use serde_json::Value;

use super::names::{category_name, scope_name};
use super::{ts, InspectError};
use crate::backend::OutboxConnection;

/// Rows waiting in one (direction, scope, category).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingGroup {
    /// Which outbox (`region` or `control`).
    #[serde(serialize_with = "super::direction")]
    pub direction: Direction,
    /// `shard_scope`.
    pub scope: i32,
    /// The scope's name, when the registry knows it.
    pub scope_name: Option<&'static str>,
    /// `category`.
    pub category: i32,
    /// The category's name, when the registry knows it.
    pub category_name: Option<&'static str>,
    /// Rows waiting.
    pub rows: i64,
    /// Of those, rows whose `scheduled_for` is in the future (held back).
    pub scheduled_later: i64,
    /// `date_added` of the oldest row.
    #[serde(with = "ts::option")]
    pub oldest_added: Option<NaiveDateTime>,
    /// Age of the oldest row in seconds.
    pub oldest_age_seconds: Option<f64>,
}

/// A shard that failed and is waiting for its next attempt (or leased).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardBackoff {
    /// Which outbox.
    #[serde(serialize_with = "super::direction")]
    pub direction: Direction,
    /// `shard_scope`.
    pub scope: i32,
    /// The scope's name, when known.
    pub scope_name: Option<&'static str>,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// Target region of control shards; empty for region shards.
    pub region_name: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// When a worker may try again.
    #[serde(with = "ts")]
    pub next_attempt_at: NaiveDateTime,
    /// Seconds until then (0 when already due).
    pub retry_in_seconds: f64,
    /// The last receiver error.
    pub last_error: Option<String>,
    /// The category whose receiver failed last.
    pub last_error_category: Option<i32>,
    /// Its name, when known.
    pub last_error_category_name: Option<&'static str>,
    /// The worker holding the shard's lease, if any.
    pub lease_owner: Option<String>,
    /// Until when it holds it.
    #[serde(with = "ts")]
    pub lease_until: NaiveDateTime,
    /// Rows waiting in the shard.
    pub pending_rows: i64,
}

/// A message group moved to the dead-letter table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantinedGroup {
    /// Id to retry or discard it with.
    pub id: i64,
    /// Which outbox it came from.
    #[serde(serialize_with = "super::direction")]
    pub direction: Direction,
    /// `shard_scope`.
    pub scope: i32,
    /// The scope's name, when known.
    pub scope_name: Option<&'static str>,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// Target region (control groups); empty for region groups.
    pub region_name: String,
    /// `category`.
    pub category: i32,
    /// The category's name, when known.
    pub category_name: Option<&'static str>,
    /// `object_identifier`.
    pub object_identifier: i64,
    /// The newest payload of the group.
    pub payload: Option<Value>,
    /// Lowest outbox row id of the group.
    pub first_row_id: i64,
    /// Highest outbox row id of the group (the one that would be delivered).
    pub last_row_id: i64,
    /// How many outbox rows it coalesced.
    pub row_count: i32,
    /// `date_added` of its oldest row.
    #[serde(with = "ts")]
    pub date_added: NaiveDateTime,
    /// Attempts before it was quarantined.
    pub attempts: i32,
    /// The last receiver error.
    pub last_error: String,
    /// When it was quarantined.
    #[serde(with = "ts")]
    pub quarantined_at: NaiveDateTime,
    /// Whether it holds its shard (`on_poison = block`) until retried or discarded.
    pub blocking: bool,
}

/// Why rows count as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    /// The id is not declared by this application (written by a newer version?).
    NotDeclared,
    /// The id is declared but retired: no receiver will ever take these rows.
    Retired,
}

/// Rows of a category id that this application cannot deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnknownCategory {
    /// Which outbox.
    #[serde(serialize_with = "super::direction")]
    pub direction: Direction,
    /// The stored category id.
    pub category: i32,
    /// Its name, when retired but declared.
    pub category_name: Option<&'static str>,
    /// Rows waiting.
    pub rows: i64,
    /// Why it cannot be delivered.
    pub reason: UnknownReason,
}

/// The whole status of one database's outboxes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// When it was taken (UTC).
    #[serde(with = "ts")]
    pub generated_at: NaiveDateTime,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Rows waiting in both outboxes.
    pub total_pending: i64,
    /// Rows waiting per direction (`region`, `control`).
    pub pending_by_direction: BTreeMap<&'static str, i64>,
    /// Age in seconds of the oldest waiting row.
    pub oldest_age_seconds: Option<f64>,
    /// Rows per (direction, scope, category), most rows first.
    pub pending: Vec<PendingGroup>,
    /// Shards that failed, soonest retry first.
    pub backoff: Vec<ShardBackoff>,
    /// Quarantined groups, oldest first.
    pub quarantined: Vec<QuarantinedGroup>,
    /// Rows of categories this application cannot deliver; `None` until a
    /// registry (or a list of known ids) was applied.
    pub unknown_categories: Option<Vec<UnknownCategory>>,
}

impl StatusReport {
    /// Reads the status of the outboxes behind `conn`, ids only.
    ///
    /// # Errors
    /// [`InspectError::MissingTables`] when the outbox tables do not exist; database errors.
    pub fn collect<C: OutboxConnection>(conn: &mut C) -> Result<StatusReport, InspectError> {
        super::query::status(conn.db(), crate::write::row::now())
    }

    /// Names scopes and categories with `registry`, and lists the rows whose
    /// category it does not declare (or declares retired). A registry without
    /// categories (a tool that links no application) names nothing and leaves
    /// `unknown_categories` as `None`.
    pub fn with_registry(mut self, registry: &Registry) -> StatusReport {
        for g in &mut self.pending {
            g.scope_name = scope_name(registry, g.scope);
            g.category_name = category_name(registry, g.category);
        }
        for b in &mut self.backoff {
            b.scope_name = scope_name(registry, b.scope);
            b.last_error_category_name = b.last_error_category.and_then(|c| category_name(registry, c));
        }
        for q in &mut self.quarantined {
            q.name(registry);
        }
        if registry.categories().is_empty() {
            return self;
        }
        let unknown = self
            .pending
            .iter()
            .filter_map(|g| {
                let reason = match registry.category(g.category) {
                    None => UnknownReason::NotDeclared,
                    Some(info) if info.retired => UnknownReason::Retired,
                    Some(_) => return None,
                };
                Some((g.direction, g.category, g.category_name, g.rows, reason))
            })
            .collect::<Vec<_>>();
        self.unknown_categories = Some(merge_unknown(unknown));
        self
    }

    /// Lists the rows whose category is not among `known` (for tools without
    /// the application's registry: `outbox status --known-categories 0,2,5`).
    pub fn with_known_categories(mut self, known: &[i32]) -> StatusReport {
        let unknown = self
            .pending
            .iter()
            .filter(|g| !known.contains(&g.category))
            .map(|g| (g.direction, g.category, g.category_name, g.rows, UnknownReason::NotDeclared))
            .collect();
        self.unknown_categories = Some(merge_unknown(unknown));
        self
    }
}

type UnknownRow = (Direction, i32, Option<&'static str>, i64, UnknownReason);

fn merge_unknown(rows: Vec<UnknownRow>) -> Vec<UnknownCategory> {
    let mut merged: BTreeMap<(Direction, i32), UnknownCategory> = BTreeMap::new();
    for (direction, category, category_name, rows, reason) in rows {
        merged
            .entry((direction, category))
            .or_insert(UnknownCategory { direction, category, category_name, rows: 0, reason })
            .rows += rows;
    }
    merged.into_values().collect()
}

impl QuarantinedGroup {
    /// Names scope and category with `registry`.
    pub fn with_registry(mut self, registry: &Registry) -> QuarantinedGroup {
        self.name(registry);
        self
    }

    pub(crate) fn name(&mut self, registry: &Registry) {
        self.scope_name = scope_name(registry, self.scope);
        self.category_name = category_name(registry, self.category);
    }
}

/// One shard's depth (`outbox shards --top N`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardDepth {
    /// Which outbox.
    #[serde(serialize_with = "super::direction")]
    pub direction: Direction,
    /// `shard_scope`.
    pub scope: i32,
    /// The scope's name, when known.
    pub scope_name: Option<&'static str>,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// Target region (control shards); empty for region shards.
    pub region_name: String,
    /// Rows waiting.
    pub rows: i64,
    /// `date_added` of its oldest row.
    #[serde(with = "ts::option")]
    pub oldest_added: Option<NaiveDateTime>,
    /// Age of its oldest row in seconds.
    pub oldest_age_seconds: Option<f64>,
    /// Failed attempts recorded for the shard (0 when healthy).
    pub attempts: i32,
    /// Next attempt, when the shard is backing off.
    #[serde(with = "ts::option")]
    pub next_attempt_at: Option<NaiveDateTime>,
}

impl ShardDepth {
    /// Names the scope with `registry`.
    pub fn with_registry(mut self, registry: &Registry) -> ShardDepth {
        self.scope_name = scope_name(registry, self.scope);
        self
    }
}

/// One outbox row, as `outbox shard` and `outbox object` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRow {
    /// Which outbox.
    #[serde(serialize_with = "super::direction")]
    pub direction: Direction,
    /// `id`.
    pub id: i64,
    /// `shard_scope`.
    pub scope: i32,
    /// The scope's name, when known.
    pub scope_name: Option<&'static str>,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// Target region (control rows); empty for region rows.
    pub region_name: String,
    /// `category`.
    pub category: i32,
    /// The category's name, when known.
    pub category_name: Option<&'static str>,
    /// `object_identifier`.
    pub object_identifier: i64,
    /// `payload`.
    pub payload: Option<Value>,
    /// Not processed before this.
    #[serde(with = "ts")]
    pub scheduled_for: NaiveDateTime,
    /// When it was written.
    #[serde(with = "ts")]
    pub date_added: NaiveDateTime,
    /// Its age in seconds.
    pub age_seconds: f64,
}

impl MessageRow {
    /// Names scope and category with `registry`.
    pub fn with_registry(mut self, registry: &Registry) -> MessageRow {
        self.scope_name = scope_name(registry, self.scope);
        self.category_name = category_name(registry, self.category);
        self
    }
}

/// Everything stored about one object (`outbox object CATEGORY ID`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectReport {
    /// `category`.
    pub category: i32,
    /// The category's name, when known.
    pub category_name: Option<&'static str>,
    /// `object_identifier`.
    pub object_identifier: i64,
    /// Its outbox rows, newest first.
    pub rows: Vec<MessageRow>,
    /// Its quarantined groups.
    pub quarantined: Vec<QuarantinedGroup>,
}

impl ObjectReport {
    /// Names scopes and categories with `registry`.
    pub fn with_registry(mut self, registry: &Registry) -> ObjectReport {
        self.category_name = category_name(registry, self.category);
        self.rows = self.rows.into_iter().map(|r| r.with_registry(registry)).collect();
        for q in &mut self.quarantined {
            q.name(registry);
        }
        self
    }
}

impl From<crate::drain::QuarantinedGroup> for QuarantinedGroup {
    fn from(g: crate::drain::QuarantinedGroup) -> Self {
        QuarantinedGroup {
            id: g.id,
            direction: g.shard.direction,
            scope: g.shard.shard_scope,
            scope_name: None,
            shard_identifier: g.shard.shard_identifier,
            region_name: g.shard.region_name,
            category: g.category,
            category_name: None,
            object_identifier: g.object_identifier,
            payload: g.payload,
            first_row_id: g.first_row_id,
            last_row_id: g.last_row_id,
            row_count: g.row_count,
            date_added: g.date_added,
            attempts: g.attempts,
            last_error: g.last_error,
            quarantined_at: g.quarantined_at,
            blocking: g.blocking,
        }
    }
}
