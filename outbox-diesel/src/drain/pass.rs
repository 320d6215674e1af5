//! One pass: claim, load, deliver, complete. See the module docs of `drain`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use chrono::{NaiveDateTime, Utc};
use outbox_core::{
    registry, CategoryInfo, ControlDelivery, Delivery, Direction, Message, PoisonPolicy, Receiver, ReceiverError,
    ReceiverRegistration, Resources,
};

use super::sql::{self, ClaimArgs, GroupDelete, LoadedGroup};
use super::{DrainError, DrainReport, Drainer, Failure, Filter};
use crate::backend::{Backend, DbConn};
use crate::flush::ShardKey;
use crate::write::row::the_past;

static TOKENS: AtomicU64 = AtomicU64::new(0);

fn next_token(owner: &str) -> String {
    format!("{owner}/{}", TOKENS.fetch_add(1, Ordering::Relaxed))
}

struct ShardWork {
    key: ShardKey,
    attempts: u32,
    /// Coalesced groups, in the order of their oldest row.
    groups: Vec<LoadedGroup>,
}

#[derive(Default)]
struct Outcome {
    /// Groups to delete at completion: delivered (non-transactional) and discarded.
    delete: Vec<GroupDelete>,
    /// Some group was attempted (delivered, failed or discarded).
    touched: bool,
    /// The shard stopped on a failure: (attempts, next attempt, error, category).
    failure: Option<(u32, NaiveDateTime, String, i32)>,
    /// The lease was found lost during delivery.
    lease_lost: bool,
}

fn filter_sql(direction: Direction, filter: &Filter) -> String {
    let mut extra = String::new();
    if let Some(max) = filter.max_id {
        let max = match direction {
            Direction::Region => max[0],
            Direction::Control => max[1],
        };
        extra.push_str(&format!(" AND o.id <= {max}"));
    }
    if let Some(shards) = &filter.shards {
        let matches: Vec<String> =
            shards.iter().filter(|s| s.direction == direction).map(|s| sql::shard_match(direction, s)).collect();
        if matches.is_empty() {
            extra.push_str(" AND 1 = 0");
        } else {
            extra.push_str(&format!(" AND ({})", matches.join(" OR ")));
        }
    }
    extra
}

pub(crate) fn run(
    dr: &Drainer,
    mut db: DbConn<'_>,
    direction: Direction,
    filter: &Filter,
    stop: Option<&AtomicBool>,
) -> Result<DrainReport, DrainError> {
    let mut report = DrainReport::default();
    let categories = sql::handled_categories(direction);
    if categories == "NULL" {
        return Ok(report);
    }
    let backend = db.backend();
    let extra = filter_sql(direction, filter);
    let settings = dr.settings();
    let now = dr.clock().now();
    let token = next_token(dr.owner());
    let lease = chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::MAX);

    let (claimed, groups) = {
        let _span = tracing::debug_span!("outbox.claim", %direction, token = %token).entered();
        let claim = sql::claim_sql(
            backend,
            &ClaimArgs {
                direction,
                categories: &categories,
                extra: extra.clone(),
                now,
                lease_until: now + lease,
                token: &token,
                // Enough of the oldest rows to find `batch_shards` shards when
                // shards interleave, without scanning the whole row budget.
                window: (settings.batch_shards.saturating_mul(20)).clamp(100, settings.batch_rows.max(100)),
                shards: settings.batch_shards,
            },
        );
        // One statement: atomic on PostgreSQL without a transaction; SQLite takes
        // the write lock up front so two claimers never interleave.
        let claimed = match backend {
            Backend::Postgres => sql::claim(&mut db, &claim)?,
            Backend::Sqlite => sql::write_tx(&mut db, |db| sql::claim(db, &claim))?,
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        // Spread the batch's row budget over the shards claimed: each contributes
        // the groups of its first `heads` rows (a deep shard alone gets them all).
        let heads = (settings.batch_rows / claimed.len() as u32).max(1);
        let load = sql::load_sql(backend, direction, &categories, &extra, &token, heads);
        let groups = match sql::load_groups(&mut db, &load) {
            Ok(rows) => rows,
            Err(e) => {
                // Give the shards back rather than let them wait for the lease.
                let _ = release_all(&mut db, &token, backend);
                return Err(e.into());
            }
        };
        tracing::debug!(shards = claimed.len(), groups = groups.len(), "claimed");
        (claimed, groups)
    };
    report.claims = 1;
    report.shards = claimed.len() as u64;
    let rows: i64 = groups.iter().map(|g| g.n_rows).sum();
    metrics::histogram!("outbox.batch_size", "direction" => direction.as_str()).record(rows as f64);

    let mut shards: Vec<ShardWork> = claimed
        .into_iter()
        .map(|c| ShardWork {
            key: ShardKey {
                direction,
                shard_scope: c.shard_scope,
                shard_identifier: c.shard_identifier,
                region_name: c.region_name,
            },
            attempts: c.attempts.max(0) as u32,
            groups: Vec::new(),
        })
        .collect();
    let index: HashMap<(i32, i64, String), usize> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.key.shard_scope, s.key.shard_identifier, s.key.region_name.clone()), i))
        .collect();
    for group in groups {
        if let Some(&i) = index.get(&(group.shard_scope, group.shard_identifier, group.region_name.clone())) {
            shards[i].groups.push(group);
        }
    }

    let mut outcomes = Vec::with_capacity(shards.len());
    for shard in &shards {
        let outcome = if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            Outcome::default()
        } else {
            deliver_shard(dr, &mut db, direction, &token, shard, &mut report)
        };
        outcomes.push(outcome);
    }

    if let Err(e) = complete(dr, &mut db, direction, &token, &shards, &outcomes, &mut report) {
        // Give the shards back rather than let them wait for the lease: what was
        // delivered but not deleted is delivered again (at-least-once).
        let _ = release_all(&mut db, &token, backend);
        return Err(e);
    }
    Ok(report)
}

fn release_all(db: &mut DbConn<'_>, token: &str, backend: Backend) -> diesel::QueryResult<usize> {
    sql::exec(
        db,
        &format!(
            "UPDATE outbox_shard SET lease_owner = NULL, lease_until = {} WHERE lease_owner = {}",
            sql::ts(backend, the_past()),
            sql::lit(token)
        ),
    )?;
    sql::exec(db, "DELETE FROM outbox_shard WHERE lease_owner IS NULL AND attempts = 0")
}

enum GroupError {
    Receiver(ReceiverError),
    LeaseLost,
}

impl From<diesel::result::Error> for GroupError {
    fn from(e: diesel::result::Error) -> Self {
        GroupError::Receiver(ReceiverError::from(e))
    }
}

fn deliver_shard(
    dr: &Drainer,
    db: &mut DbConn<'_>,
    direction: Direction,
    token: &str,
    shard: &ShardWork,
    report: &mut DrainReport,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut attempts_before = shard.attempts;
    for group in &shard.groups {
        let (category, object) = (group.category, group.object_identifier);
        let Some(info) = registry().category(category) else { break };
        outcome.touched = true;
        let _span = tracing::debug_span!("outbox.group", %direction, category = info.name, object, rows = group.n_rows)
            .entered();
        if info.discard {
            report.discarded += group.n_rows as u64;
            outcome.delete.push(group.delete_key());
            continue;
        }
        let Some(receiver) = registry().receiver(category, direction) else { break };
        let message = Message {
            id: group.id,
            direction,
            category,
            shard_scope: group.shard_scope,
            shard_identifier: group.shard_identifier,
            object_identifier: object,
            payload: group.payload.clone(),
            region_name: (direction == Direction::Control).then(|| group.region_name.clone()),
            date_added: group.date_added.and_utc(),
            coalesced: group.n_rows as u32,
            attempt: attempts_before,
        };
        let started = Instant::now();
        let result = if info.transactional {
            deliver_transactional(dr, db, direction, token, &shard.key, receiver, &message, &group.delete_key())
        } else {
            invoke(dr, receiver, &message, db).map_err(GroupError::Receiver)
        };
        let labels = [("category", info.name.to_string()), ("direction", direction.as_str().to_string())];
        match result {
            Ok(()) => {
                if !info.transactional {
                    outcome.delete.push(group.delete_key());
                }
                attempts_before = 0;
                report.delivered += 1;
                report.coalesced += group.n_rows as u64 - 1;
                metrics::counter!("outbox.processed", &labels).increment(1);
                metrics::counter!("outbox.coalesced", &labels).increment(group.n_rows as u64 - 1);
                let now = Utc::now();
                metrics::histogram!("outbox.processing_lag", &labels)
                    .record((now - message.date_added).num_milliseconds() as f64 / 1000.0);
                metrics::histogram!("outbox.queue_time", &labels).record(
                    (now - message.date_added).num_milliseconds() as f64 / 1000.0 - started.elapsed().as_secs_f64(),
                );
            }
            Err(GroupError::LeaseLost) => {
                outcome.lease_lost = true;
                break;
            }
            Err(GroupError::Receiver(error)) => {
                let attempts = attempts_before + 1;
                let error = error.to_string();
                metrics::counter!("outbox.failed", &labels).increment(1);
                tracing::warn!(%direction, category = info.name, object, attempts, %error, "outbox receiver failed");
                let max = info.max_attempts.unwrap_or(dr.settings().max_attempts).max(1);
                if attempts >= max {
                    match quarantine(dr, db, direction, token, &shard.key, info, group, attempts, &error) {
                        Ok(true) => {
                            report.quarantined += 1;
                            metrics::counter!("outbox.quarantined", &labels).increment(1);
                            report.failures.push(failure(&shard.key, &message, attempts, error, true));
                            if info.on_poison == PoisonPolicy::Skip {
                                attempts_before = 0;
                                continue;
                            }
                            break;
                        }
                        Ok(false) => {
                            outcome.lease_lost = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not quarantine; backing off instead");
                        }
                    }
                }
                let now = dr.clock().now();
                let delay =
                    chrono::Duration::from_std(dr.settings().backoff.delay(attempts)).unwrap_or(chrono::Duration::MAX);
                report.failures.push(failure(&shard.key, &message, attempts, error.clone(), false));
                outcome.failure = Some((attempts, now + delay, error, category));
                break;
            }
        }
    }
    outcome
}

fn failure(shard: &ShardKey, message: &Message, attempts: u32, error: String, quarantined: bool) -> Failure {
    Failure {
        shard: shard.clone(),
        category: message.category,
        object_identifier: message.object_identifier,
        attempts,
        error,
        quarantined,
    }
}

/// Calls the receiver: panics are caught, the deadline is checked on return.
pub(crate) fn invoke(
    dr: &Drainer,
    receiver: &ReceiverRegistration,
    message: &Message,
    db: &mut DbConn<'_>,
) -> Result<(), ReceiverError> {
    let _span = tracing::debug_span!("outbox.receiver", receiver = receiver.name, id = message.id).entered();
    let resources: &Resources = dr.resources();
    #[cfg(feature = "testing")]
    let fault = resources.get::<crate::testing::Faults>();
    #[cfg(feature = "testing")]
    if let Some(e) = fault.and_then(|f| f.before(message.category)) {
        return Err(e);
    }
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut cx = Delivery::new(message, resources, db.as_any());
        match receiver.receiver {
            Receiver::Region(f) => f(&mut cx),
            Receiver::Control(f) => {
                let region = message.region_name.as_deref().unwrap_or("");
                f(&mut ControlDelivery::new(cx, region))
            }
        }
    }))
    .unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_string());
        Err(ReceiverError::panicked(text))
    });
    let deadline = dr.settings().deadline;
    if result.is_ok() && started.elapsed() > deadline {
        return Err(ReceiverError::deadline_exceeded(deadline));
    }
    #[cfg(feature = "testing")]
    if result.is_ok() {
        if let Some(e) = fault.and_then(|f| f.after(message.category)) {
            return Err(e);
        }
    }
    result
}

/// Runs the receiver inside the transaction that checks the lease and deletes
/// the group: the receiver's writes to this database and the deletion commit or
/// roll back together.
#[allow(clippy::too_many_arguments)]
fn deliver_transactional(
    dr: &Drainer,
    db: &mut DbConn<'_>,
    direction: Direction,
    token: &str,
    shard: &ShardKey,
    receiver: &ReceiverRegistration,
    message: &Message,
    group: &GroupDelete,
) -> Result<(), GroupError> {
    let lock = if db.backend() == Backend::Postgres { " FOR UPDATE" } else { "" };
    let check = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM outbox_shard WHERE {} AND lease_owner = {}{lock}) held",
        sql::state_match(direction, shard),
        sql::lit(token)
    );
    sql::write_tx(db, |db| {
        if sql::count(db, &check)? == 0 {
            return Err(GroupError::LeaseLost);
        }
        invoke(dr, receiver, message, db).map_err(GroupError::Receiver)?;
        sql::delete_groups(db, direction, std::slice::from_ref(group))?;
        Ok(())
    })
}

/// Moves a group to `outbox_quarantine` (one row: the newest payload, the id
/// range, the row count, the error) and deletes its rows, if the lease is still
/// held. Returns whether it did.
#[allow(clippy::too_many_arguments)]
fn quarantine(
    dr: &Drainer,
    db: &mut DbConn<'_>,
    direction: Direction,
    token: &str,
    shard: &ShardKey,
    info: &CategoryInfo,
    group: &LoadedGroup,
    attempts: u32,
    error: &str,
) -> diesel::QueryResult<bool> {
    let backend = db.backend();
    let (table, region) = sql::table(direction);
    let check = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM outbox_shard WHERE {} AND lease_owner = {}",
        sql::state_match(direction, shard),
        sql::lit(token)
    );
    let insert = format!(
        "INSERT INTO outbox_quarantine (direction, shard_scope, shard_identifier, region_name, category, object_identifier,
            payload, first_row_id, last_row_id, row_count, date_added, attempts, last_error, quarantined_at, blocking)
         SELECT {d}, o.shard_scope, o.shard_identifier, {region}, o.category, o.object_identifier, o.payload, {first_id},
            o.id, {count}, {date_added}, {attempts}, {err}, {now}, {blocking}
         FROM {table} o WHERE o.id = {last_id}",
        d = direction.code(),
        first_id = group.first_id,
        count = group.n_rows,
        date_added = sql::ts(backend, group.date_added),
        err = sql::ph(backend, 1),
        now = sql::ts(backend, dr.clock().now()),
        blocking = if info.on_poison == PoisonPolicy::Block { "TRUE" } else { "FALSE" },
        last_id = group.id,
    );
    sql::write_tx(db, |db| {
        if sql::count(db, &check)? == 0 {
            return Ok(false);
        }
        sql::exec_text(db, &insert, error)?;
        sql::delete_groups(db, direction, &[group.delete_key()])?;
        tracing::warn!(%direction, category = info.name, object = group.object_identifier, attempts, "message group quarantined");
        Ok(true)
    })
}

fn complete(
    dr: &Drainer,
    db: &mut DbConn<'_>,
    direction: Direction,
    token: &str,
    shards: &[ShardWork],
    outcomes: &[Outcome],
    report: &mut DrainReport,
) -> Result<(), DrainError> {
    let backend = db.backend();
    let past = sql::ts(backend, the_past());
    let token_lit = sql::lit(token);
    let finish = |db: &mut DbConn<'_>| -> Result<(u64, u64), diesel::result::Error> {
        let (mut lost, mut deleted) = (0u64, 0u64);
        // Shards that stop here keep their state row, released: a failure (attempts,
        // backoff, error), or a shard not reached that had failed before. An update
        // that finds no row held by this token means the lease was lost.
        for (shard, outcome) in shards.iter().zip(outcomes) {
            let key = sql::state_match(direction, &shard.key);
            if let Some((attempts, next, error, category)) = &outcome.failure {
                let sql = format!(
                    "UPDATE outbox_shard SET lease_owner = NULL, lease_until = {past}, attempts = {attempts},
                        next_attempt_at = {next}, last_error = {err}, last_error_category = {category}
                     WHERE {key} AND lease_owner = {token_lit}",
                    next = sql::ts(backend, *next),
                    err = sql::ph(backend, 1),
                );
                if sql::exec_text(db, &sql, error)? == 0 {
                    lost += 1;
                } else {
                    // Groups delivered before the failure are done.
                    deleted += sql::delete_groups(db, direction, &outcome.delete)? as u64;
                }
            } else if !outcome.touched && shard.attempts > 0 {
                sql::exec(
                    db,
                    &format!(
                        "UPDATE outbox_shard SET lease_owner = NULL, lease_until = {past} WHERE {key} AND lease_owner = {token_lit}"
                    ),
                )?;
            }
        }
        // Every other state row still held by this token goes, and with it the
        // groups delivered in that shard, atomically. A lost lease keeps its rows:
        // another worker may hold the shard now; they are delivered again
        // (at-least-once) rather than deleted under the new holder.
        let delete: Vec<GroupDelete> =
            outcomes.iter().filter(|o| o.failure.is_none()).flat_map(|o| o.delete.iter().cloned()).collect();
        let (held, n) = sql::finish_held(db, direction, token, &delete)?;
        deleted += n;
        lost += shards
            .iter()
            .zip(outcomes)
            .filter(|(s, o)| {
                o.touched
                    && o.failure.is_none()
                    && !o.lease_lost // counted where it was found
                    && !held.contains(&(s.key.shard_scope, s.key.shard_identifier, s.key.region_name.clone()))
            })
            .count() as u64;
        Ok((deleted, lost))
    };
    let (deleted, lost) = sql::write_tx(db, finish)?;
    report.rows_deleted += deleted;
    report.leases_lost += lost + outcomes.iter().filter(|o| o.lease_lost).count() as u64;
    if lost > 0 {
        tracing::warn!(%direction, lost, owner = dr.owner(), "leases lost before completion; their rows will be delivered again");
    }
    Ok(())
}
