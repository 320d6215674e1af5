//! The drain engine: claims due shards with a lease, delivers their coalesced
//! message groups in id order outside any transaction, and deletes what it
//! delivered in one short transaction per batch.
//!
//! A [`Drainer`] holds the settings (batch sizes, lease, deadline, backoff,
//! attempts before quarantine), the resources receivers borrow and the clock.
//! [`crate::worker::Worker`] runs one on a pool; a `Synchronous` flush
//! ([`transaction_synchronous`]) runs one in the caller's thread.
//!
//! How one pass works (per direction):
//! 1. **claim** (one statement; autocommit on PostgreSQL, an IMMEDIATE transaction
//!    on SQLite): the oldest due rows (`ORDER BY id LIMIT window`) of shards that
//!    are neither leased, backing off nor blocked by a quarantined group name
//!    candidate shards; `INSERT .. ON CONFLICT DO UPDATE .. WHERE lease expired and
//!    not backing off` leases them under a token unique to this claim, so one
//!    worker wins each shard. On PostgreSQL each candidate shard is first
//!    try-locked (`pg_try_advisory_xact_lock`, released at the end of the
//!    statement), the skip-without-waiting of `FOR UPDATE SKIP LOCKED` applied to
//!    shards: concurrent claimers take disjoint shards instead of queueing behind
//!    each other. Claims lock no outbox row, so completions never wait on them.
//! 2. **load** (one query): per claimed shard, the groups (same category and
//!    object) of its first `batch_rows / shards` rows in id order, each coalesced
//!    over all its rows in the shard: newest row (delivered), row count, oldest
//!    date. A shard's groups are always a prefix of it; a group that ends inside
//!    the rows read comes with its row ids.
//! 3. **deliver** (no transaction): per shard, group after group in the order of
//!    their oldest row, each once, as its newest row. A failure stops the shard for
//!    this pass and backs it off.
//! 4. **complete** (one short transaction): delete the state rows still held by
//!    the token and, in those shards only, the delivered groups (by primary key
//!    when their ids are known, else each up to its delivered id); rows written
//!    while receivers ran have higher ids and stay.
//!
//! Rows of categories this binary cannot handle (unknown ids, retired ids, or no
//! receiver for the row's direction) are invisible to claims and loads: they stay
//! untouched, never block their shard or any other, and are reported by
//! [`unhandled_rows`] and logged once per category by workers. Within a shard the
//! rows around them are delivered in order; the unknown rows keep their place in
//! the table for a newer binary.

mod pass;
mod quarantine;
pub(crate) mod sql;
mod sync;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use outbox_core::{registry, Backoff, Direction, Resources};

use crate::backend::OutboxConnection;
use crate::flush::ShardKey;

pub use quarantine::{discard_quarantined, list_quarantined, retry_quarantined, QuarantinedGroup};
pub use sync::{transaction_synchronous, SyncFlushError, Undelivered};

/// Where the engine reads the time. Leases, backoff and quarantine stamps use it;
/// receiver deadlines use the monotonic clock. Tests inject a manual clock
/// (`outbox::testing::ManualClock`).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> NaiveDateTime + Send + Sync>);

impl Clock {
    /// The system clock (UTC).
    pub fn system() -> Self {
        Clock(Arc::new(|| Utc::now().naive_utc()))
    }

    /// A clock reading `f`.
    pub fn from_fn(f: impl Fn() -> NaiveDateTime + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// The current time, truncated to microseconds (what both backends store).
    pub fn now(&self) -> NaiveDateTime {
        let t = (self.0)();
        let micros = t.and_utc().timestamp_micros();
        chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc()).unwrap_or(t)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// Why draining stopped. Receiver failures are not errors: they are recorded on
/// the shard and reported in [`DrainReport::failures`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrainError {
    /// The database refused a statement (connection lost, server restart ...).
    /// Workers log it and retry with backoff.
    #[error("database error while draining: {0}")]
    Database(#[from] diesel::result::Error),
    /// No connection could be taken from the pool.
    #[error("could not get a connection from the pool: {0}")]
    Pool(String),
    /// The registry is invalid; workers refuse to start.
    #[error(transparent)]
    Registry(#[from] outbox_core::RegistryError),
    /// Inconsistent settings.
    #[error("invalid drain settings: {0}")]
    Config(String),
}

/// A receiver failure recorded during draining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The shard, now backing off (or unblocked again when its group was skipped).
    pub shard: ShardKey,
    /// Category of the failed group.
    pub category: i32,
    /// Object of the failed group.
    pub object_identifier: i64,
    /// Consecutive failures of the shard, this one included.
    pub attempts: u32,
    /// The receiver's error.
    pub error: String,
    /// Whether the group was moved to quarantine.
    pub quarantined: bool,
}

/// Rows this binary leaves untouched: their category is unknown, retired, or has
/// no receiver for the row's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnhandledRows {
    /// The outbox holding them.
    pub direction: Direction,
    /// Their category id.
    pub category: i32,
    /// How many rows.
    pub rows: i64,
    /// Why they are not handled.
    pub reason: &'static str,
}

/// What draining did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Claims that leased at least one shard.
    pub claims: u64,
    /// Shards leased.
    pub shards: u64,
    /// Groups delivered successfully (receiver calls that succeeded).
    pub delivered: u64,
    /// Rows deleted after delivery (delivered groups, coalesced rows included).
    pub rows_deleted: u64,
    /// Rows that needed no call of their own thanks to coalescing.
    pub coalesced: u64,
    /// Rows of `discard` categories deleted unprocessed.
    pub discarded: u64,
    /// Groups moved to quarantine.
    pub quarantined: u64,
    /// Shards whose lease was lost before completion (their rows are kept).
    pub leases_lost: u64,
    /// Receiver failures, in order.
    pub failures: Vec<Failure>,
    /// Rows left untouched because this binary cannot handle their category.
    pub unhandled: Vec<UnhandledRows>,
}

impl DrainReport {
    pub(crate) fn merge(&mut self, other: DrainReport) {
        self.claims += other.claims;
        self.shards += other.shards;
        self.delivered += other.delivered;
        self.rows_deleted += other.rows_deleted;
        self.coalesced += other.coalesced;
        self.discarded += other.discarded;
        self.quarantined += other.quarantined;
        self.leases_lost += other.leases_lost;
        self.failures.extend(other.failures);
        if !other.unhandled.is_empty() {
            self.unhandled = other.unhandled;
        }
    }
}

/// The drain engine's settings and the resources its receivers borrow.
///
/// ```
/// use std::time::Duration;
/// use outbox::drain::Drainer;
///
/// struct SearchIndex;
/// let drainer = Drainer::builder()
///     .batch_shards(50)
///     .lease(Duration::from_secs(60))
///     .deadline(Duration::from_secs(30))
///     .resource(SearchIndex)
///     .build()?;
/// assert_eq!(drainer.settings().batch_shards, 50);
/// # Ok::<(), outbox::drain::DrainError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Drainer {
    settings: Settings,
    resources: Arc<Resources>,
    clock: Clock,
    owner: Arc<str>,
}

/// Numbers a [`Drainer`] works with. See [`DrainerBuilder`] for their meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Shards leased per claim (default 50).
    pub batch_shards: u32,
    /// Rows loaded per claim (default 5,000), spread over the shards claimed.
    pub batch_rows: u32,
    /// How long a claim holds its shards (default 5 minutes).
    pub lease: Duration,
    /// Longest a receiver may run before it counts as failed (default 2 minutes).
    pub deadline: Duration,
    /// Backoff after failures (default 2 s doubling, capped at 1 hour).
    pub backoff: Backoff,
    /// Attempts before a group is quarantined when its category sets none (default 10).
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_shards: 50,
            batch_rows: 5_000,
            lease: Duration::from_secs(300),
            deadline: Duration::from_secs(120),
            backoff: Backoff::default(),
            max_attempts: 10,
        }
    }
}

/// Builds a [`Drainer`]; every option has a default.
#[derive(Debug, Default)]
pub struct DrainerBuilder {
    settings: Settings,
    resources: Resources,
    clock: Clock,
    owner: Option<String>,
}

impl DrainerBuilder {
    /// Shards leased per claim.
    pub fn batch_shards(mut self, n: u32) -> Self {
        self.settings.batch_shards = n;
        self
    }

    /// Rows loaded per claim (the engine never loads the whole backlog).
    pub fn batch_rows(mut self, n: u32) -> Self {
        self.settings.batch_rows = n;
        self
    }

    /// How long a claim holds its shards. A worker that dies releases them when
    /// this passes; keep it longer than [`DrainerBuilder::deadline`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self
    }

    /// Longest a receiver may run. A receiver that returns after it counts as
    /// failed (its effect may have happened: receivers are idempotent). The
    /// engine checks the elapsed time when the receiver returns; it does not
    /// abandon a hung receiver, whose shard another worker takes once the lease expires.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.settings.deadline = deadline;
        self
    }

    /// Backoff after failures.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Attempts before quarantine, for categories that do not set `max_attempts`.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.settings.max_attempts = n;
        self
    }

    /// Lends a value to receivers (`cx.resource::<T>()`); one per type.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Replaces every resource.
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }

    /// The clock for leases and backoff (tests inject one).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A name for this drainer in leases and logs (default: process id and a random suffix).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Checks the settings (not the registry: [`crate::worker::WorkerBuilder::build`] does).
    ///
    /// # Errors
    /// [`DrainError::Config`] for zero batch sizes or attempts, or a deadline not
    /// shorter than the lease.
    pub fn build(self) -> Result<Drainer, DrainError> {
        let s = &self.settings;
        if s.batch_shards == 0 || s.batch_rows == 0 {
            return Err(DrainError::Config("batch_shards and batch_rows must be at least 1".into()));
        }
        if s.max_attempts == 0 {
            return Err(DrainError::Config("max_attempts must be at least 1".into()));
        }
        if s.deadline >= s.lease {
            return Err(DrainError::Config(format!(
                "the receiver deadline ({:?}) must be shorter than the lease ({:?}), or a slow receiver could overlap another worker",
                s.deadline, s.lease
            )));
        }
        let owner = self.owner.unwrap_or_else(default_owner);
        Ok(Drainer {
            settings: self.settings,
            resources: Arc::new(self.resources),
            clock: self.clock,
            owner: owner.into(),
        })
    }
}

fn default_owner() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{:08x}", std::process::id(), nanos ^ (std::process::id().rotate_left(16)))
}

/// Which rows a pass may claim.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Only these shards.
    pub shards: Option<Vec<ShardKey>>,
    /// Only rows with an id at most this (per direction: region, control).
    pub max_id: Option<[i64; 2]>,
}

impl Drainer {
    /// A builder with the default settings.
    pub fn builder() -> DrainerBuilder {
        DrainerBuilder::default()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The resources lent to receivers.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The owner name written into leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Drains everything due on `conn`, claim after claim, until a claim of
    /// both directions finds nothing. Shards that fail back off and are not
    /// retried by this call before their backoff passes.
    ///
    /// ```
    /// # use diesel::{Connection, SqliteConnection};
    /// let mut conn = SqliteConnection::establish(":memory:")?;
    /// outbox::migrate(&mut conn)?;
    /// let drainer = outbox::drain::Drainer::builder().build()?;
    /// let report = drainer.drain_until_idle(&mut conn)?;
    /// assert_eq!(report.delivered, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Database errors.
    pub fn drain_until_idle<C: OutboxConnection>(&self, conn: &mut C) -> Result<DrainReport, DrainError> {
        self.drain_filtered(conn, &Filter::default(), None)
    }

    /// Drains the given shards until they have nothing due (or back off).
    ///
    /// # Errors
    /// Database errors.
    pub fn drain_shards<C: OutboxConnection>(
        &self,
        conn: &mut C,
        shards: &[ShardKey],
    ) -> Result<DrainReport, DrainError> {
        if shards.is_empty() {
            return Ok(DrainReport::default());
        }
        self.drain_filtered(conn, &Filter { shards: Some(shards.to_vec()), max_id: None }, None)
    }

    pub(crate) fn drain_filtered<C: OutboxConnection>(
        &self,
        conn: &mut C,
        filter: &Filter,
        stop: Option<&AtomicBool>,
    ) -> Result<DrainReport, DrainError> {
        let mut report = DrainReport::default();
        loop {
            let mut claimed = 0;
            for direction in Direction::ALL {
                let pass = self.pass(conn, direction, filter, stop)?;
                claimed += pass.shards;
                report.merge(pass);
            }
            if claimed == 0 || stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                break;
            }
        }
        report.unhandled = unhandled_rows(conn)?;
        Ok(report)
    }

    /// One claim, delivery and completion of `direction`.
    ///
    /// # Errors
    /// Database errors.
    pub(crate) fn pass<C: OutboxConnection>(
        &self,
        conn: &mut C,
        direction: Direction,
        filter: &Filter,
        stop: Option<&AtomicBool>,
    ) -> Result<DrainReport, DrainError> {
        pass::run(self, conn.db(), direction, filter, stop)
    }

    /// Delivers what a [`crate::transaction_with`] call committed, by its policy:
    /// `Synchronous` drains the written shards here, `Notify` wakes workers,
    /// `Deferred` does nothing.
    ///
    /// # Errors
    /// [`Undelivered`] when a synchronous delivery failed or hit a database
    /// error: the data is committed and workers will retry.
    pub fn flush<C: OutboxConnection>(
        &self,
        conn: &mut C,
        committed: &crate::flush::Committed,
    ) -> Result<DrainReport, Undelivered> {
        sync::flush(self, conn, committed)
    }
}

/// Counts the rows this binary leaves untouched, per direction and category,
/// and logs each category once per process (`tracing::warn`).
///
/// # Errors
/// Database errors.
pub fn unhandled_rows<C: OutboxConnection>(conn: &mut C) -> Result<Vec<UnhandledRows>, DrainError> {
    let mut out = Vec::new();
    let mut db = conn.db();
    for direction in Direction::ALL {
        let handled = sql::handled_categories(direction);
        for (category, rows) in sql::count_unhandled(&mut db, direction, &handled)? {
            let reason = unhandled_reason(category, direction);
            warn_once(direction, category, rows, reason);
            out.push(UnhandledRows { direction, category, rows, reason });
        }
    }
    Ok(out)
}

/// Rows waiting in each outbox; also recorded as the `outbox.depth` gauge
/// (label `direction`). Workers record it whenever they go idle.
///
/// # Errors
/// Database errors.
pub fn record_depth<C: OutboxConnection>(conn: &mut C) -> Result<[i64; 2], DrainError> {
    let mut db = conn.db();
    let mut depth = [0; 2];
    for direction in Direction::ALL {
        let (table, _) = sql::table(direction);
        let n = sql::count(&mut db, &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"))?;
        metrics::gauge!("outbox.depth", "direction" => direction.as_str()).set(n as f64);
        depth[direction.code() as usize] = n;
    }
    Ok(depth)
}

fn unhandled_reason(category: i32, direction: Direction) -> &'static str {
    match registry().category(category) {
        None => "unknown category (written by another version of the application?)",
        Some(c) if c.retired => "retired category",
        Some(_) if registry().receiver(category, direction).is_none() => "no receiver for this direction",
        Some(_) => "handled",
    }
}

fn warn_once(direction: Direction, category: i32, rows: i64, reason: &str) {
    static SEEN: Mutex<Option<HashSet<(Direction, i32)>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert((direction, category)) {
        tracing::warn!(%direction, category, rows, reason, "outbox rows left untouched: this binary cannot handle their category");
    }
}

/// The delivery state of a shard that failed or is leased (`outbox_shard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardState {
    /// The shard.
    pub shard: ShardKey,
    /// The lease token holding it, if any.
    pub lease_owner: Option<String>,
    /// Until when the lease holds.
    pub lease_until: NaiveDateTime,
    /// Consecutive failures.
    pub attempts: i32,
    /// Not claimed before this.
    pub next_attempt_at: NaiveDateTime,
    /// The last receiver error.
    pub last_error: Option<String>,
    /// The category that failed last.
    pub last_error_category: Option<i32>,
}

/// Every shard state row: shards backing off or leased right now.
///
/// # Errors
/// Database errors.
pub fn shard_states<C: OutboxConnection>(conn: &mut C) -> Result<Vec<ShardState>, DrainError> {
    use crate::schema::outbox_shard::dsl as s;
    use diesel::prelude::*;
    type Tuple =
        (i32, i32, i64, String, Option<String>, NaiveDateTime, i32, NaiveDateTime, Option<String>, Option<i32>);
    let rows: Vec<Tuple> = crate::__with_db!(conn.db(), |c| s::outbox_shard
        .order((s::direction, s::shard_scope, s::shard_identifier, s::region_name))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|r| ShardState {
            shard: ShardKey {
                direction: Direction::from_code(r.0).unwrap_or(Direction::Region),
                shard_scope: r.1,
                shard_identifier: r.2,
                region_name: r.3,
            },
            lease_owner: r.4,
            lease_until: r.5,
            attempts: r.6,
            next_attempt_at: r.7,
            last_error: r.8,
            last_error_category: r.9,
        })
        .collect())
}
