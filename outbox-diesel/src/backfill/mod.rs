//! Backfill: outbox rows for rows that existed before their model used outboxes.
//!
//! When a model starts replicating, its existing rows have never been written
//! to an outbox, so their replicas do not exist. A backfill walks the model's
//! table in id batches and writes, for every row, the outbox rows a save would
//! write ([`OutboxModel::outbox_rows`]); the receivers then replicate them like
//! any change.
//!
//! Progress is a watermark per model table in `outbox_backfill`
//! (`table_name`, `low_id`: the lowest id not yet done, `version`), with
//! Sentry's rules:
//! - each batch and its watermark advance commit in one transaction, so a
//!   crash loses at most the batch in flight and a new run resumes after the
//!   last committed one: every row gets exactly one backfill outbox row;
//! - raising `#[outbox(replication_version = N)]` above the stored version
//!   restarts from the beginning (say, after a receiver learned a new field);
//! - when no row is left the watermark becomes (0, `N + 1`): done, and a new
//!   run does nothing until the version is raised again, which then starts
//!   from the beginning;
//! - a configured version lower than the coded one
//!   ([`BackfillOptions::configured_version`], e.g. from your settings)
//!   pauses the backfill without losing its place;
//! - [`run`] writes at most [`BackfillOptions::rows_per_minute`] rows a minute
//!   (10,000 by default) so a backfill does not swamp the workers.
//!
//! ```
//! # use diesel::{Connection, SqliteConnection};
//! use outbox_diesel::backfill::{self, BackfillOptions};
//! # fn demo<M: outbox_diesel::OutboxModel>(conn: &mut SqliteConnection) -> outbox_diesel::Result<()> {
//! let summary = backfill::run::<M, _>(conn, BackfillOptions { batch_size: 500, ..BackfillOptions::default() })?;
//! println!("{}: {} rows written, {:?}", summary.table, summary.rows_written, summary.end);
//! # Ok(())
//! # }
//! ```
//!
//! Rows are read with the model's own loader (ordered by primary key), and
//! the watermark advances past the highest [`OutboxModel::object_identifier`]
//! of each batch, so the object identifier must be the primary key (the
//! default). Ids below 0 are not backfilled, as in Sentry.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde::Serialize;

use crate::backend::{DbConn, OutboxConnection};
use crate::error::Result;
use crate::model::OutboxModel;
use crate::schema::outbox_backfill;
use crate::write::insert_rows;

/// Sentry's default rate: rows written per minute.
pub const DEFAULT_ROWS_PER_MINUTE: u32 = 10_000;

/// How to run a backfill. Start from `BackfillOptions::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillOptions {
    /// Model rows per batch (one transaction each). Default 1,000.
    pub batch_size: usize,
    /// At most this many rows a minute ([`run`] sleeps between batches);
    /// `None` for no limit. Default 10,000.
    pub rows_per_minute: Option<u32>,
    /// The version configured for this model at run time (your settings). When
    /// it is lower than the coded `replication_version`, the backfill pauses.
    pub configured_version: Option<i32>,
    /// Stop [`run`] after this many batches (cron-style slices); `None` runs to the end.
    pub max_batches: Option<u64>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            batch_size: 1_000,
            rows_per_minute: Some(DEFAULT_ROWS_PER_MINUTE),
            configured_version: None,
            max_batches: None,
        }
    }
}

/// A stored backfill watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watermark {
    /// The model's table.
    pub table_name: String,
    /// The lowest id not yet backfilled.
    pub low_id: i64,
    /// The version being backfilled, or `replication_version + 1` when done.
    pub version: i32,
}

/// What one [`backfill_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// A batch was written; rows may remain.
    Progress {
        /// Model rows in the batch.
        rows: usize,
        /// Outbox rows written for them.
        outbox_rows: usize,
        /// The new watermark.
        low_id: i64,
    },
    /// No row was left: the stored version is now `replication_version + 1`.
    Finished,
    /// Already done for this version: nothing to do.
    AlreadyDone,
    /// Paused: the configured version is below the coded one.
    Paused {
        /// The configured version.
        configured: i32,
        /// The model's `replication_version`.
        coded: i32,
    },
}

/// How a [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum BackfillEnd {
    /// Every row is done (now or before this run).
    Done,
    /// Paused by a lower configured version.
    Paused {
        /// The configured version.
        configured: i32,
        /// The model's `replication_version`.
        coded: i32,
    },
    /// Stopped after [`BackfillOptions::max_batches`]; run again to go on.
    Stopped,
}

/// Progress reported after every batch of [`run_with_progress`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackfillProgress {
    /// The model's table.
    pub table: &'static str,
    /// The version being backfilled.
    pub version: i32,
    /// The watermark: lowest id not yet done.
    pub low_id: i64,
    /// Model rows done by this run so far.
    pub rows_done: u64,
    /// Outbox rows written by this run so far.
    pub outbox_rows: u64,
    /// Batches done by this run so far.
    pub batches: u64,
    /// Whether the backfill has finished.
    pub finished: bool,
}

/// What a [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackfillSummary {
    /// The model's table.
    pub table: &'static str,
    /// The model's `replication_version`.
    pub version: i32,
    /// Model rows backfilled by this run.
    pub rows_written: u64,
    /// Outbox rows written by this run.
    pub outbox_rows: u64,
    /// Batches committed by this run.
    pub batches: u64,
    /// How it ended.
    pub end: BackfillEnd,
}

/// Backfills the model `M` to the end (or until paused or
/// [`BackfillOptions::max_batches`]), one transaction per batch, at most
/// [`BackfillOptions::rows_per_minute`].
///
/// # Errors
/// Database errors, and errors of [`OutboxModel::outbox_rows`] for a row (e.g. a
/// control model without target regions). Batches committed before the error
/// stay done; the next run resumes after them.
pub fn run<M: OutboxModel, C: OutboxConnection>(conn: &mut C, options: BackfillOptions) -> Result<BackfillSummary> {
    run_with_progress::<M, C, _>(conn, options, |_| {})
}

/// [`run`], calling `progress` after every committed batch and at the end (for
/// a progress bar: `outbox_diesel::cli::backfill_with_bar` draws one).
///
/// # Errors
/// As [`run`].
pub fn run_with_progress<M, C, F>(conn: &mut C, options: BackfillOptions, mut progress: F) -> Result<BackfillSummary>
where
    M: OutboxModel,
    C: OutboxConnection,
    F: FnMut(&BackfillProgress),
{
    let started = Instant::now();
    let mut state = BackfillProgress {
        table: M::TABLE_NAME,
        version: M::REPLICATION_VERSION,
        low_id: 0,
        rows_done: 0,
        outbox_rows: 0,
        batches: 0,
        finished: false,
    };
    let summary = |state: &BackfillProgress, end| BackfillSummary {
        table: M::TABLE_NAME,
        version: M::REPLICATION_VERSION,
        rows_written: state.rows_done,
        outbox_rows: state.outbox_rows,
        batches: state.batches,
        end,
    };
    loop {
        if options.max_batches.is_some_and(|max| state.batches >= max) {
            return Ok(summary(&state, BackfillEnd::Stopped));
        }
        if let Some(rate) = options.rows_per_minute.filter(|r| *r > 0) {
            // Pace by rows already written: the first batch goes at once, each
            // later one waits until the budget allows what came before it.
            let due = Duration::from_secs_f64(state.rows_done as f64 * 60.0 / f64::from(rate));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        match backfill_batch::<M, C>(conn, &options)? {
            BatchOutcome::Progress { rows, outbox_rows, low_id } => {
                state.rows_done += rows as u64;
                state.outbox_rows += outbox_rows as u64;
                state.batches += 1;
                state.low_id = low_id;
                progress(&state);
            }
            BatchOutcome::Finished | BatchOutcome::AlreadyDone => {
                state.finished = true;
                progress(&state);
                return Ok(summary(&state, BackfillEnd::Done));
            }
            BatchOutcome::Paused { configured, coded } => {
                return Ok(summary(&state, BackfillEnd::Paused { configured, coded }));
            }
        }
    }
}

/// Backfills one batch of `M` (at most [`BackfillOptions::batch_size`] rows,
/// lowest ids first) and advances the watermark, in one transaction. For
/// schedulers that run a slice at a time; ignores the rate limit.
///
/// # Errors
/// As [`run`]; nothing of the failed batch is written.
pub fn backfill_batch<M: OutboxModel, C: OutboxConnection>(
    conn: &mut C,
    options: &BackfillOptions,
) -> Result<BatchOutcome> {
    let coded = M::REPLICATION_VERSION;
    if let Some(configured) = options.configured_version.filter(|v| *v < coded) {
        return Ok(BatchOutcome::Paused { configured, coded });
    }
    let limit = options.batch_size.clamp(1, options.rows_per_minute.map_or(usize::MAX, |r| (r as usize).max(1)));
    conn.transaction(|conn| {
        let (low_id, version) = match lock_watermark(conn.db(), M::TABLE_NAME)? {
            (_, stored) if stored > coded => return Ok(BatchOutcome::AlreadyDone),
            (low, stored) if stored == coded => (low, coded),
            // Never run, or an older version: start over from the beginning.
            _ => (0, coded),
        };
        let batch =
            M::__outbox_load_batch(low_id.saturating_sub(1), i64::try_from(limit).unwrap_or(i64::MAX), conn.db())?;
        if batch.is_empty() {
            // Sentry's encoding of "done": the next version, from the start. So raising
            // `replication_version` by one finds (0, N) and backfills everything again.
            store(conn.db(), M::TABLE_NAME, 0, coded + 1)?;
            tracing::info!(table = M::TABLE_NAME, version, "backfill finished");
            return Ok(BatchOutcome::Finished);
        }
        let mut rows = Vec::with_capacity(batch.len());
        let mut highest = low_id;
        for model in &batch {
            highest = highest.max(model.object_identifier()?);
            rows.extend(model.outbox_rows()?);
        }
        insert_rows(conn.db(), &rows)?;
        let next = highest.saturating_add(1);
        store(conn.db(), M::TABLE_NAME, next, version)?;
        tracing::debug!(table = M::TABLE_NAME, version, low_id = next, rows = batch.len(), "backfill batch");
        Ok(BatchOutcome::Progress { rows: batch.len(), outbox_rows: rows.len(), low_id: next })
    })
}

/// The stored watermark of `M`, if a backfill of it ever ran.
///
/// # Errors
/// Database errors (e.g. tables missing: run `outbox::migrate`).
pub fn watermark<M: OutboxModel, C: OutboxConnection>(conn: &mut C) -> Result<Option<Watermark>> {
    Ok(watermarks(conn)?.into_iter().find(|w| w.table_name == M::TABLE_NAME))
}

/// Whether `M` is fully backfilled at its current `replication_version`.
///
/// # Errors
/// Database errors.
pub fn is_done<M: OutboxModel, C: OutboxConnection>(conn: &mut C) -> Result<bool> {
    Ok(watermark::<M, C>(conn)?.is_some_and(|w| w.version > M::REPLICATION_VERSION))
}

/// Every stored watermark, by table name (`outbox backfills` prints them).
///
/// # Errors
/// Database errors.
pub fn watermarks<C: OutboxConnection>(conn: &mut C) -> Result<Vec<Watermark>> {
    let rows: Vec<(String, i64, i32)> =
        crate::__with_db!(conn.db(), |c| outbox_backfill::table.order(outbox_backfill::table_name).load(c))?;
    Ok(rows.into_iter().map(|(table_name, low_id, version)| Watermark { table_name, low_id, version }).collect())
}

/// Reads the watermark inside the batch's transaction, locked so two backfills
/// of one table cannot write the same batch twice: the row is created first (a
/// write, which on SQLite takes the write lock) and read `FOR UPDATE` on PostgreSQL.
fn lock_watermark(mut db: DbConn<'_>, table: &str) -> Result<(i64, i32)> {
    crate::__with_db!(db.reborrow(), |c| diesel::insert_into(outbox_backfill::table)
        .values((outbox_backfill::table_name.eq(table), outbox_backfill::low_id.eq(0), outbox_backfill::version.eq(0)))
        .on_conflict_do_nothing()
        .execute(c))?;
    let row = match db {
        #[cfg(feature = "sqlite")]
        DbConn::Sqlite(c) => {
            outbox_backfill::table.find(table).select((outbox_backfill::low_id, outbox_backfill::version)).first(c)?
        }
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => outbox_backfill::table
            .find(table)
            .select((outbox_backfill::low_id, outbox_backfill::version))
            .for_update()
            .first(c)?,
    };
    Ok(row)
}

fn store(mut db: DbConn<'_>, table: &str, low_id: i64, version: i32) -> Result<()> {
    crate::__with_db!(db.reborrow(), |c| diesel::update(outbox_backfill::table.find(table))
        .set((outbox_backfill::low_id.eq(low_id), outbox_backfill::version.eq(version)))
        .execute(c))?;
    Ok(())
}
