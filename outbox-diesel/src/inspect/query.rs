//! The queries behind the reports (Sentry's debugging queries, plus the
//! shard state and dead letters this project adds).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel::sql_types::Text;
use outbox_core::Direction;
use serde_json::Value;

use super::report::{MessageRow, ObjectReport, PendingGroup, QuarantinedGroup, ShardBackoff, ShardDepth, StatusReport};
use super::{backend_name, seconds_between, InspectError};
use crate::backend::{Backend, DbConn, OutboxConnection};
use crate::schema::{control_outbox, outbox_shard, region_outbox};
use crate::write::row::now;

/// The tables the inspector (and the rest of outbox) needs.
pub const REQUIRED_TABLES: [&str; 5] =
    ["region_outbox", "control_outbox", "outbox_shard", "outbox_quarantine", "outbox_backfill"];

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Checks that the outbox tables exist.
///
/// # Errors
/// [`InspectError::MissingTables`] naming the missing tables and the migration to run.
pub fn check_tables<C: OutboxConnection>(conn: &mut C) -> Result<(), InspectError> {
    check(conn.db())
}

pub(crate) fn check(mut db: DbConn<'_>) -> Result<(), InspectError> {
    let backend = db.backend();
    let names: Vec<TableName> = match backend {
        Backend::Sqlite => crate::__with_db!(db.reborrow(), |c| diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
        .load(c))?,
        Backend::Postgres => crate::__with_db!(db.reborrow(), |c| diesel::sql_query(
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = ANY (current_schemas(false))"
        )
        .load(c))?,
    };
    let missing: Vec<&str> =
        REQUIRED_TABLES.iter().copied().filter(|t| !names.iter().any(|n| n.name.eq_ignore_ascii_case(t))).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(InspectError::MissingTables {
        backend: backend_name(backend),
        missing: missing.join(", "),
        constant: match backend {
            Backend::Sqlite => "SQLITE_UP",
            Backend::Postgres => "POSTGRES_UP",
        },
    })
}

type Grouped = Vec<(i32, i32, i64, Option<NaiveDateTime>)>;

macro_rules! pending_of {
    ($db:expr, $t:ident, $now:expr) => {{
        let all: Grouped = crate::__with_db!($db.reborrow(), |c| $t::table
            .group_by(($t::shard_scope, $t::category))
            .select(($t::shard_scope, $t::category, count_star(), min($t::date_added)))
            .load(c))?;
        let later: Vec<(i32, i32, i64)> = crate::__with_db!($db.reborrow(), |c| $t::table
            .filter($t::scheduled_for.gt($now))
            .group_by(($t::shard_scope, $t::category))
            .select(($t::shard_scope, $t::category, count_star()))
            .load(c))?;
        (all, later)
    }};
}

pub(crate) fn status(mut db: DbConn<'_>, now: NaiveDateTime) -> Result<StatusReport, InspectError> {
    check(db.reborrow())?;
    let mut pending = Vec::new();
    let mut by_direction = BTreeMap::new();
    for direction in Direction::ALL {
        let (all, later) = match direction {
            Direction::Region => pending_of!(db, region_outbox, now),
            Direction::Control => pending_of!(db, control_outbox, now),
        };
        let later: HashMap<(i32, i32), i64> = later.into_iter().map(|(s, c, n)| ((s, c), n)).collect();
        by_direction.insert(direction.as_str(), all.iter().map(|g| g.2).sum::<i64>());
        pending.extend(all.into_iter().map(|(scope, category, rows, oldest)| PendingGroup {
            direction,
            scope,
            scope_name: None,
            category,
            category_name: None,
            rows,
            scheduled_later: later.get(&(scope, category)).copied().unwrap_or(0),
            oldest_added: oldest,
            oldest_age_seconds: oldest.map(|t| seconds_between(t, now)),
        }));
    }
    pending.sort_by(|a, b| {
        b.rows.cmp(&a.rows).then((a.direction, a.scope, a.category).cmp(&(b.direction, b.scope, b.category)))
    });
    let oldest = pending.iter().filter_map(|g| g.oldest_added).min();
    Ok(StatusReport {
        generated_at: now,
        backend: match db.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        total_pending: by_direction.values().sum(),
        pending_by_direction: by_direction,
        oldest_age_seconds: oldest.map(|t| seconds_between(t, now)),
        pending,
        backoff: backoff(db.reborrow(), now)?,
        quarantined: load_quarantine(db.reborrow(), None)?,
        unknown_categories: None,
    })
}

type ShardTuple =
    (i32, i32, i64, String, Option<String>, NaiveDateTime, i32, NaiveDateTime, Option<String>, Option<i32>);

fn shard_states(mut db: DbConn<'_>, failing_only: bool) -> Result<Vec<ShardTuple>, InspectError> {
    let rows: Vec<ShardTuple> = crate::__with_db!(db.reborrow(), |c| {
        let mut q = outbox_shard::table.into_boxed();
        if failing_only {
            q = q.filter(outbox_shard::attempts.gt(0).or(outbox_shard::last_error.is_not_null()));
        }
        q.order((outbox_shard::next_attempt_at, outbox_shard::direction, outbox_shard::shard_scope))
            .select((
                outbox_shard::direction,
                outbox_shard::shard_scope,
                outbox_shard::shard_identifier,
                outbox_shard::region_name,
                outbox_shard::lease_owner,
                outbox_shard::lease_until,
                outbox_shard::attempts,
                outbox_shard::next_attempt_at,
                outbox_shard::last_error,
                outbox_shard::last_error_category,
            ))
            .load(c)
    })?;
    Ok(rows)
}

fn shard_depth(mut db: DbConn<'_>, direction: Direction, scope: i32, shard: i64, region: &str) -> QueryResult<i64> {
    match direction {
        Direction::Region => crate::__with_db!(db.reborrow(), |c| region_outbox::table
            .filter(region_outbox::shard_scope.eq(scope))
            .filter(region_outbox::shard_identifier.eq(shard))
            .count()
            .get_result(c)),
        Direction::Control => crate::__with_db!(db.reborrow(), |c| control_outbox::table
            .filter(control_outbox::shard_scope.eq(scope))
            .filter(control_outbox::shard_identifier.eq(shard))
            .filter(control_outbox::region_name.eq(region))
            .count()
            .get_result(c)),
    }
}

fn backoff(mut db: DbConn<'_>, now: NaiveDateTime) -> Result<Vec<ShardBackoff>, InspectError> {
    let mut out = Vec::new();
    for s in shard_states(db.reborrow(), true)? {
        let Some(direction) = Direction::from_code(s.0) else { continue };
        let pending_rows = shard_depth(db.reborrow(), direction, s.1, s.2, &s.3)?;
        out.push(ShardBackoff {
            direction,
            scope: s.1,
            scope_name: None,
            shard_identifier: s.2,
            region_name: s.3,
            attempts: s.6,
            next_attempt_at: s.7,
            retry_in_seconds: (-seconds_between(s.7, now)).max(0.0),
            last_error: s.8,
            last_error_category: s.9,
            last_error_category_name: None,
            lease_owner: s.4,
            lease_until: s.5,
            pending_rows,
        });
    }
    Ok(out)
}

/// Quarantined groups, oldest first; only those of one (category, object) when given.
pub(crate) fn load_quarantine(
    mut db: DbConn<'_>,
    object: Option<(i32, i64)>,
) -> Result<Vec<QuarantinedGroup>, InspectError> {
    let groups = crate::__with_db!(db.reborrow(), |c| crate::drain::list_quarantined(c))?;
    Ok(groups
        .into_iter()
        .filter(|g| object.is_none_or(|(category, id)| g.category == category && g.object_identifier == id))
        .map(QuarantinedGroup::from)
        .collect())
}

type ShardGroup = (i32, i64, i64, Option<NaiveDateTime>);
type ControlShardGroup = (String, i32, i64, i64, Option<NaiveDateTime>);

/// The `n` deepest shards of both outboxes, deepest first, with their failure state.
///
/// # Errors
/// [`InspectError::MissingTables`]; database errors.
pub fn top_shards<C: OutboxConnection>(conn: &mut C, n: usize) -> Result<Vec<ShardDepth>, InspectError> {
    let mut db = conn.db();
    check(db.reborrow())?;
    let now = now();
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let region: Vec<ShardGroup> = crate::__with_db!(db.reborrow(), |c| region_outbox::table
        .group_by((region_outbox::shard_scope, region_outbox::shard_identifier))
        .select((
            region_outbox::shard_scope,
            region_outbox::shard_identifier,
            count_star(),
            min(region_outbox::date_added)
        ))
        .order_by((count_star().desc(), region_outbox::shard_scope, region_outbox::shard_identifier))
        .limit(limit)
        .load(c))?;
    let control: Vec<ControlShardGroup> = crate::__with_db!(db.reborrow(), |c| control_outbox::table
        .group_by((control_outbox::region_name, control_outbox::shard_scope, control_outbox::shard_identifier))
        .select((
            control_outbox::region_name,
            control_outbox::shard_scope,
            control_outbox::shard_identifier,
            count_star(),
            min(control_outbox::date_added),
        ))
        .order_by((count_star().desc(), control_outbox::shard_scope, control_outbox::shard_identifier))
        .limit(limit)
        .load(c))?;
    let states: HashMap<(i32, i32, i64, String), (i32, NaiveDateTime)> =
        shard_states(db.reborrow(), true)?.into_iter().map(|s| ((s.0, s.1, s.2, s.3), (s.6, s.7))).collect();
    let depth = |direction: Direction, scope, shard, region: String, rows, oldest: Option<NaiveDateTime>| {
        let state = states.get(&(direction.code(), scope, shard, region.clone()));
        ShardDepth {
            direction,
            scope,
            scope_name: None,
            shard_identifier: shard,
            region_name: region,
            rows,
            oldest_added: oldest,
            oldest_age_seconds: oldest.map(|t| seconds_between(t, now)),
            attempts: state.map_or(0, |s| s.0),
            next_attempt_at: state.map(|s| s.1),
        }
    };
    let mut all: Vec<ShardDepth> = region
        .into_iter()
        .map(|(s, i, n, o)| depth(Direction::Region, s, i, String::new(), n, o))
        .chain(control.into_iter().map(|(r, s, i, n, o)| depth(Direction::Control, s, i, r, n, o)))
        .collect();
    all.sort_by(|a, b| {
        b.rows.cmp(&a.rows).then((a.direction, a.scope, a.shard_identifier, &a.region_name).cmp(&(
            b.direction,
            b.scope,
            b.shard_identifier,
            &b.region_name,
        )))
    });
    all.truncate(n);
    Ok(all)
}

type RegionRow = (i64, i32, i64, i32, i64, Option<Value>, NaiveDateTime, NaiveDateTime);
type ControlRow = (i64, i32, i64, String, i32, i64, Option<Value>, NaiveDateTime, NaiveDateTime);

macro_rules! region_columns {
    () => {
        (
            region_outbox::id,
            region_outbox::shard_scope,
            region_outbox::shard_identifier,
            region_outbox::category,
            region_outbox::object_identifier,
            region_outbox::payload,
            region_outbox::scheduled_for,
            region_outbox::date_added,
        )
    };
}

macro_rules! control_columns {
    () => {
        (
            control_outbox::id,
            control_outbox::shard_scope,
            control_outbox::shard_identifier,
            control_outbox::region_name,
            control_outbox::category,
            control_outbox::object_identifier,
            control_outbox::payload,
            control_outbox::scheduled_for,
            control_outbox::date_added,
        )
    };
}

fn region_message(r: RegionRow, now: NaiveDateTime) -> MessageRow {
    MessageRow {
        direction: Direction::Region,
        id: r.0,
        scope: r.1,
        scope_name: None,
        shard_identifier: r.2,
        region_name: String::new(),
        category: r.3,
        category_name: None,
        object_identifier: r.4,
        payload: r.5,
        scheduled_for: r.6,
        date_added: r.7,
        age_seconds: seconds_between(r.7, now),
    }
}

fn control_message(r: ControlRow, now: NaiveDateTime) -> MessageRow {
    MessageRow {
        direction: Direction::Control,
        id: r.0,
        scope: r.1,
        scope_name: None,
        shard_identifier: r.2,
        region_name: r.3,
        category: r.4,
        category_name: None,
        object_identifier: r.5,
        payload: r.6,
        scheduled_for: r.7,
        date_added: r.8,
        age_seconds: seconds_between(r.8, now),
    }
}

fn newest_first(rows: &mut [MessageRow]) {
    rows.sort_by_key(|r| std::cmp::Reverse((r.date_added, r.id, r.direction)));
}

/// One shard's messages, newest first, at most `limit` of them. Both outboxes
/// are searched; `region` restricts to the control shard of that region.
///
/// # Errors
/// [`InspectError::MissingTables`]; database errors.
pub fn shard_messages<C: OutboxConnection>(
    conn: &mut C,
    scope: i32,
    shard_identifier: i64,
    region: Option<&str>,
    limit: usize,
) -> Result<Vec<MessageRow>, InspectError> {
    let mut db = conn.db();
    check(db.reborrow())?;
    let now = now();
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    if region.is_none() {
        let region_rows: Vec<RegionRow> = crate::__with_db!(db.reborrow(), |c| region_outbox::table
            .filter(region_outbox::shard_scope.eq(scope))
            .filter(region_outbox::shard_identifier.eq(shard_identifier))
            .order(region_outbox::id.desc())
            .limit(n)
            .select(region_columns!())
            .load(c))?;
        rows.extend(region_rows.into_iter().map(|r| region_message(r, now)));
    }
    let control_rows: Vec<ControlRow> = crate::__with_db!(db.reborrow(), |c| {
        let mut q = control_outbox::table
            .filter(control_outbox::shard_scope.eq(scope))
            .filter(control_outbox::shard_identifier.eq(shard_identifier))
            .into_boxed();
        if let Some(region) = region {
            q = q.filter(control_outbox::region_name.eq(region));
        }
        q.order(control_outbox::id.desc()).limit(n).select(control_columns!()).load(c)
    })?;
    rows.extend(control_rows.into_iter().map(|r| control_message(r, now)));
    newest_first(&mut rows);
    rows.truncate(limit);
    Ok(rows)
}

/// Every outbox row and quarantined group of one object (category, object identifier).
///
/// # Errors
/// [`InspectError::MissingTables`]; database errors.
pub fn object_rows<C: OutboxConnection>(
    conn: &mut C,
    category: i32,
    object_identifier: i64,
) -> Result<ObjectReport, InspectError> {
    let mut db = conn.db();
    check(db.reborrow())?;
    let now = now();
    let region_rows: Vec<RegionRow> = crate::__with_db!(db.reborrow(), |c| region_outbox::table
        .filter(region_outbox::category.eq(category))
        .filter(region_outbox::object_identifier.eq(object_identifier))
        .select(region_columns!())
        .load(c))?;
    let control_rows: Vec<ControlRow> = crate::__with_db!(db.reborrow(), |c| control_outbox::table
        .filter(control_outbox::category.eq(category))
        .filter(control_outbox::object_identifier.eq(object_identifier))
        .select(control_columns!())
        .load(c))?;
    let mut rows: Vec<MessageRow> = region_rows
        .into_iter()
        .map(|r| region_message(r, now))
        .chain(control_rows.into_iter().map(|r| control_message(r, now)))
        .collect();
    newest_first(&mut rows);
    Ok(ObjectReport {
        category,
        category_name: None,
        object_identifier,
        rows,
        quarantined: load_quarantine(db.reborrow(), Some((category, object_identifier)))?,
    })
}
