//! Workers: threads that drain the outboxes of one database through an r2d2 pool.
//!
//! Many worker threads, processes and machines may share one database: shards
//! are leased per claim, so each is delivered by one worker at a time.

mod listen;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, Pool, R2D2Connection};
use outbox_core::{registry, Backoff, Direction};

use crate::backend::OutboxConnection;
use crate::drain::{record_depth, unhandled_rows, Clock, DrainError, DrainReport, Drainer, DrainerBuilder, Filter};
use crate::flush::ShardKey;

/// Drains the outboxes of the database behind an r2d2 pool.
///
/// ```
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::SqliteConnection;
/// use outbox::worker::Worker;
///
/// let dir = tempfile::tempdir()?;
/// let url = dir.path().join("app.sqlite3").to_string_lossy().into_owned();
/// let pool = Pool::builder()
///     .max_size(4)
///     .connection_customizer(Box::new(outbox::SqlitePragmas))
///     .build(ConnectionManager::<SqliteConnection>::new(url))?;
/// outbox::migrate(&mut pool.get()?)?;
///
/// struct HttpClient;
/// let worker = Worker::builder(pool).concurrency(2).resource(HttpClient).build()?;
/// let report = worker.run_until_idle()?; // drain what is due, then return
/// assert_eq!(report.delivered, 0);
/// let handle = worker.spawn();           // or keep draining in the background
/// handle.shutdown();                     // finish the current batch, then stop
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Worker<C: R2D2Connection + 'static> {
    pool: Pool<ConnectionManager<C>>,
    drainer: Drainer,
    concurrency: usize,
    poll_interval: Duration,
    listen: bool,
    listen_url: Option<String>,
}

/// Options of a [`Worker`]; see [`Worker::builder`].
pub struct WorkerBuilder<C: R2D2Connection + 'static> {
    pool: Pool<ConnectionManager<C>>,
    drainer: DrainerBuilder,
    concurrency: usize,
    poll_interval: Duration,
    listen: bool,
    listen_url: Option<String>,
}

impl<C> WorkerBuilder<C>
where
    C: OutboxConnection + R2D2Connection,
{
    /// Worker threads (default 1). Give the pool at least this many connections
    /// (plus one on PostgreSQL, for LISTEN).
    pub fn concurrency(mut self, threads: usize) -> Self {
        self.concurrency = threads.max(1);
        self
    }

    /// Shards leased per claim (default 50).
    pub fn batch_shards(mut self, n: u32) -> Self {
        self.drainer = self.drainer.batch_shards(n);
        self
    }

    /// Rows loaded per claim (default 5,000), spread over the shards claimed:
    /// each shard contributes a prefix of `batch_rows / shards claimed` rows.
    pub fn batch_rows(mut self, n: u32) -> Self {
        self.drainer = self.drainer.batch_rows(n);
        self
    }

    /// Rows per claim (`n`) and shards per claim (`n / 100`, at least 1) at once.
    pub fn batch_size(self, n: u32) -> Self {
        self.batch_shards((n / 100).max(1)).batch_rows(n)
    }

    /// How long a claim holds its shards (default 5 minutes); a dead worker's
    /// shards are taken over when it passes.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.drainer = self.drainer.lease(lease);
        self
    }

    /// Sleep between polls when nothing wakes the worker (default 5 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Longest a receiver may run before it counts as failed (default 2 minutes).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.drainer = self.drainer.deadline(deadline);
        self
    }

    /// Backoff after failures (default 2 s doubling, capped at 1 hour).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.drainer = self.drainer.backoff(backoff);
        self
    }

    /// Attempts before quarantine, for categories that set none (default 10).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.drainer = self.drainer.max_attempts(n);
        self
    }

    /// Lends a value to receivers (`cx.resource::<T>()`).
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.drainer = self.drainer.resource(value);
        self
    }

    /// The clock for leases and backoff (tests inject one).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.drainer = self.drainer.clock(clock);
        self
    }

    /// A name for this worker in leases and logs.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.drainer = self.drainer.owner(owner);
        self
    }

    /// On PostgreSQL, whether spawned workers `LISTEN` for commits (default true).
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// On PostgreSQL (Unix), the URL the LISTEN thread connects to: normally
    /// the pool's own URL (Diesel's pool does not reveal it). With it, the thread
    /// holds a dedicated connection (not a pooled one) and blocks on its socket,
    /// so commits in other processes wake workers within about a millisecond.
    /// Without it (the default), the thread holds a pooled connection and checks
    /// it every 20 ms. The LISTEN channel follows the pool's schema either way.
    /// Ignored on SQLite.
    ///
    /// ```no_run
    /// use diesel::r2d2::{ConnectionManager, Pool};
    /// use diesel::PgConnection;
    /// use outbox::worker::Worker;
    ///
    /// let url = "postgres://app@db.internal/app";
    /// let pool = Pool::builder().build(ConnectionManager::<PgConnection>::new(url))?;
    /// let handle = Worker::builder(pool).listen_url(url).build()?.spawn();
    /// handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// Validates the registry and the settings.
    ///
    /// # Errors
    /// [`DrainError::Registry`] listing every registry problem (duplicate ids,
    /// missing receivers ...): a worker never starts on an invalid registry.
    /// [`DrainError::Config`] for inconsistent settings.
    pub fn build(self) -> Result<Worker<C>, DrainError> {
        registry().validate()?;
        let drainer = self.drainer.build()?;
        Ok(Worker {
            pool: self.pool,
            drainer,
            concurrency: self.concurrency,
            poll_interval: self.poll_interval,
            listen: self.listen,
            listen_url: self.listen_url,
        })
    }
}

const DB_RETRIES: u32 = 3;

impl<C> Worker<C>
where
    C: OutboxConnection + R2D2Connection,
{
    /// Starts configuring a worker for the database behind `pool`.
    pub fn builder(pool: Pool<ConnectionManager<C>>) -> WorkerBuilder<C> {
        WorkerBuilder {
            pool,
            drainer: Drainer::builder(),
            concurrency: 1,
            poll_interval: Duration::from_secs(5),
            listen: true,
            listen_url: None,
        }
    }

    /// The drain engine (settings, resources, clock).
    pub fn drainer(&self) -> &Drainer {
        &self.drainer
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<ConnectionManager<C>> {
        &self.pool
    }

    /// Drains with `concurrency` threads until nothing is due (shards backing
    /// off or blocked by quarantine wait), then returns what was done.
    ///
    /// # Errors
    /// A database error that persisted over three retries.
    pub fn run_until_idle(&self) -> Result<DrainReport, DrainError> {
        let results: Vec<Result<DrainReport, DrainError>> = std::thread::scope(|scope| {
            let threads: Vec<_> =
                (0..self.concurrency).map(|_| scope.spawn(|| self.drain_loop(&Filter::default()))).collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|_| Err(DrainError::Config("a drain thread panicked".into()))))
                .collect()
        });
        let mut report = DrainReport::default();
        for r in results {
            report.merge(r?);
        }
        let mut conn = self.conn()?;
        report.unhandled = unhandled_rows(&mut conn)?;
        record_depth(&mut conn)?;
        Ok(report)
    }

    /// Drains one shard until it has nothing due (or backs off).
    ///
    /// # Errors
    /// A database error that persisted over three retries.
    pub fn drain_shard(&self, shard: &ShardKey) -> Result<DrainReport, DrainError> {
        self.drain_loop(&Filter { shards: Some(vec![shard.clone()]), max_id: None })
    }

    fn conn(&self) -> Result<diesel::r2d2::PooledConnection<ConnectionManager<C>>, DrainError> {
        self.pool.get().map_err(|e| DrainError::Pool(e.to_string()))
    }

    fn drain_loop(&self, filter: &Filter) -> Result<DrainReport, DrainError> {
        let mut report = DrainReport::default();
        let mut failures = 0;
        let mut empty = 0;
        loop {
            match self.round(filter, None) {
                Ok(round) => {
                    failures = 0;
                    let claimed = round.shards;
                    report.merge(round);
                    if claimed > 0 {
                        empty = 0;
                    } else if empty == 0 {
                        // Nothing claimable right now may only mean that other threads
                        // were claiming the same shards: look once more before leaving.
                        empty = 1;
                        std::thread::sleep(Duration::from_millis(5));
                    } else {
                        return Ok(report);
                    }
                }
                Err(e) if failures < DB_RETRIES => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "outbox drain failed; retrying");
                    std::thread::sleep(Duration::from_millis(100 << failures));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One claim per direction on one pooled connection.
    fn round(&self, filter: &Filter, stop: Option<&AtomicBool>) -> Result<DrainReport, DrainError> {
        let mut conn = self.conn()?;
        let mut report = DrainReport::default();
        for direction in Direction::ALL {
            report.merge(self.drainer.pass(&mut conn, direction, filter, stop)?);
        }
        Ok(report)
    }

    /// Starts `concurrency` background threads (plus a LISTEN thread on
    /// PostgreSQL, see [`WorkerBuilder::listen_url`]) that drain until [`WorkerHandle::shutdown`]. They sleep
    /// between polls unless woken by a commit in this process (`FlushPolicy::Notify`)
    /// or, on PostgreSQL, in any process. Database errors are logged and retried
    /// with backoff; the threads never exit on them.
    pub fn spawn(self) -> WorkerHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Arc::new(self);
        let mut threads = Vec::new();
        if worker.listen {
            if let Some(t) = listen::spawn(worker.pool.clone(), worker.listen_url.clone(), stop.clone()) {
                threads.push(t);
            }
        }
        for i in 0..worker.concurrency {
            let (worker, stop) = (worker.clone(), stop.clone());
            let spawned =
                std::thread::Builder::new().name(format!("outbox-worker-{i}")).spawn(move || worker.background(&stop));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "could not start an outbox worker thread"),
            }
        }
        WorkerHandle { stop, threads }
    }

    fn background(&self, stop: &AtomicBool) {
        let mut failures = 0u32;
        let mut last_report = None::<Instant>;
        while !stop.load(Ordering::Relaxed) {
            let seen = crate::wake::epoch();
            let outcome = catch_unwind(AssertUnwindSafe(|| self.round(&Filter::default(), Some(stop))));
            match outcome {
                Ok(Ok(report)) => {
                    failures = 0;
                    if last_report.is_none_or(|t| t.elapsed() > Duration::from_secs(300)) {
                        last_report = Some(Instant::now());
                        if let Ok(mut conn) = self.conn() {
                            let _ = unhandled_rows(&mut conn);
                        }
                    }
                    if report.shards > 0 {
                        continue;
                    }
                    if let Ok(mut conn) = self.conn() {
                        let _ = record_depth(&mut conn);
                    }
                    crate::wake::wait(seen, self.poll_interval);
                }
                Ok(Err(e)) => {
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_millis(100u64 << failures.min(7)).min(Duration::from_secs(10));
                    tracing::warn!(error = %e, failures, ?delay, "outbox worker: database error; retrying");
                    crate::wake::wait(crate::wake::epoch(), delay);
                }
                Err(_) => {
                    tracing::error!("outbox worker: a drain pass panicked; retrying");
                    crate::wake::wait(crate::wake::epoch(), Duration::from_secs(1));
                }
            }
        }
    }
}

/// Background workers started by [`Worker::spawn`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Graceful shutdown: each thread finishes the group it is delivering,
    /// completes its batch (deleting what it delivered and giving back the shards
    /// it did not reach), then exits. Returns when all threads have.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Asks the threads to stop without waiting; [`WorkerHandle::join`] waits.
    pub fn signal_shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        crate::wake::notify();
    }

    /// Waits for the threads to exit (after [`WorkerHandle::signal_shutdown`]).
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn stop_and_join(&mut self) {
        self.signal_shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
