//! `work`: one outbox worker per silo, W threads each.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::r2d2::R2D2Connection;
use outbox::{Backoff, DrainReport, OutboxConnection, Worker, WorkerBuilder, WorkerHandle};
use serde_json::json;

use super::models::{ControlSilo, RegionSilos, ThisRegion};
use super::silo::{open_all, Kind, Silo, SiloPool};
use super::{AppError, Silos};

enum AnyWorker {
    Sqlite(Worker<diesel::SqliteConnection>),
    Pg(Worker<diesel::PgConnection>),
}

impl AnyWorker {
    fn run_until_idle(&self) -> Result<DrainReport, AppError> {
        Ok(match self {
            AnyWorker::Sqlite(w) => w.run_until_idle()?,
            AnyWorker::Pg(w) => w.run_until_idle()?,
        })
    }

    fn spawn(self) -> WorkerHandle {
        match self {
            AnyWorker::Sqlite(w) => w.spawn(),
            AnyWorker::Pg(w) => w.spawn(),
        }
    }
}

/// A silo's worker: region workers get the control pool and their own region
/// name; the control worker gets every region's pool by name.
fn build(silo: &Silo, silos: &[Silo], threads: usize) -> Result<AnyWorker, AppError> {
    fn configure<C: OutboxConnection + R2D2Connection>(
        b: WorkerBuilder<C>,
        silo: &Silo,
        silos: &[Silo],
        threads: usize,
    ) -> WorkerBuilder<C> {
        let b = b
            .concurrency(threads)
            .owner(format!("replication-{}", silo.name))
            .poll_interval(Duration::from_millis(500))
            // Demo-sized backoff, so a transient failure (a busy SQLite file)
            // retries within a second instead of 2 s doubling.
            .backoff(Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(5) });
        match silo.kind() {
            Kind::Region => {
                let control = silos.iter().find(|s| s.kind() == Kind::Control).expect("control silo");
                b.resource(ControlSilo(control.pool.clone())).resource(ThisRegion(silo.name.clone()))
            }
            Kind::Control => {
                let regions: HashMap<String, SiloPool> = silos
                    .iter()
                    .filter(|s| s.kind() == Kind::Region)
                    .map(|s| (s.name.clone(), s.pool.clone()))
                    .collect();
                b.resource(RegionSilos(regions))
            }
        }
    }
    Ok(match &silo.pool {
        SiloPool::Sqlite(p) => AnyWorker::Sqlite(configure(Worker::builder(p.clone()), silo, silos, threads).build()?),
        // PostgreSQL: a dedicated LISTEN connection, so commits made by `produce`
        // in another process wake the workers at once.
        SiloPool::Pg(p) => AnyWorker::Pg(
            configure(Worker::builder(p.clone()).listen_url(silo.url.clone()), silo, silos, threads).build()?,
        ),
    })
}

pub fn work(
    args: &Silos,
    threads: usize,
    until_idle: bool,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<i32, AppError> {
    // Each pool serves its own worker threads (plus LISTEN) and the receivers
    // of every other silo's workers.
    let size = u32::try_from(threads * (args.regions.len() + 1) + 2).unwrap_or(64);
    let silos = open_all(&args.regions, &args.control, size, false)?;
    for silo in &silos {
        silo.check_migrated()?;
    }
    let workers = silos.iter().map(|s| build(s, &silos, threads)).collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    if !until_idle {
        let handles: Vec<WorkerHandle> = workers.into_iter().map(AnyWorker::spawn).collect();
        eprintln!("replication: {} workers x {threads} threads running; SIGINT or SIGTERM stops them", handles.len());
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for h in &handles {
            h.signal_shutdown();
        }
        for h in handles {
            h.join();
        }
        let summary =
            json!({ "stopped": true, "silos": silos.len(), "elapsed_ms": started.elapsed().as_millis() as u64 });
        writeln!(out, "{summary}")?;
        return Ok(0);
    }
    let (mut delivered, mut rows_deleted, mut failures, mut passes) = (0u64, 0u64, 0u64, 0u64);
    let mut last_note = Instant::now();
    loop {
        passes += 1;
        let mut progress = 0;
        for w in &workers {
            let report = w.run_until_idle()?;
            progress += report.delivered + report.rows_deleted;
            delivered += report.delivered;
            rows_deleted += report.rows_deleted;
            failures += report.failures.len() as u64;
        }
        if progress > 0 {
            continue;
        }
        // Nothing was due. Done when every outbox is empty; otherwise shards are
        // backing off after failures: wait for them.
        let pending: i64 = silos.iter().map(Silo::pending).sum::<Result<i64, _>>()?;
        if pending == 0 {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            return Err(AppError::msg(format!("interrupted with {pending} outbox rows pending")));
        }
        if last_note.elapsed() > Duration::from_secs(10) {
            last_note = Instant::now();
            eprintln!("replication: {pending} rows wait for a retry (see `replication status`)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let summary = json!({
        "idle": true,
        "delivered": delivered,
        "rows_deleted": rows_deleted,
        "failures": failures,
        "passes": passes,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    writeln!(out, "{summary}")?;
    Ok(0)
}
