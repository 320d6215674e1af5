//! Benchmarks of the write and drain paths, each against a hand-written SQL
//! baseline measured in the same run (this machine is shared and noisy, so only
//! ratios mean something).
//!
//! ```sh
//! cargo run --release --example bench -- --backend postgres --database-url postgres://postgres@127.0.0.1/test
//! cargo run --release --example bench -- --backend sqlite --database-url /tmp/bench.sqlite3 --json
//! ```
//!
//! Cases: `write-1`, `write-8` (save() vs the one-statement limit), `drain-1/2/4`
//! (a 100,000-row backlog over 1,000 shards vs the raw batched delete), `coalesce`
//! (100,000 updates to 1,000 objects), `latency` (commit to receiver start while a
//! producer commits 500 changes a second), `latency-remote` (the same with the worker
//! in another process, woken by NOTIFY only; PostgreSQL), `memory` (peak RSS of a
//! worker process draining the backlog). See BENCHMARKS.md for figures.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, R2D2Connection};
use diesel::sql_types::{BigInt, Text, Timestamp};
use outbox::prelude::*;
use outbox::worker::Worker;
use outbox::OutboxConnection;
use serde_json::{json, Value};

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Shard,
}

#[outbox_category]
pub enum Category {
    #[category(id = 1, scope = Scope::Shard)]
    ItemUpdate,
    #[category(id = 2, scope = Scope::Shard, region = count_call)]
    Backlog,
    #[category(id = 3, scope = Scope::Shard, region = record_latency)]
    Latency,
}

diesel::table! { bench_items (id) { id -> BigInt, shard -> BigInt, name -> Text } }

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel)]
#[diesel(table_name = bench_items)]
#[outbox(category = Category::ItemUpdate, shard = shard)]
pub struct Item {
    pub id: i64,
    pub shard: i64,
    pub name: String,
}

impl RegionReplication for Item {
    fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn handle_async_deletion(_: &mut Delivery<'_>, _: i64, _: i64, _: Option<&Value>) -> Result<(), ReceiverError> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

static CALLS: AtomicU64 = AtomicU64::new(0);

fn count_call(_cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Receiver start times of the latency case, by object identifier.
static STARTS: Mutex<Vec<(i64, Instant)>> = Mutex::new(Vec::new());

/// Set in the worker process of `latency-remote`: receivers print
/// `object_id unix_micros` to stdout instead of recording `STARTS`.
static REMOTE: AtomicBool = AtomicBool::new(false);

fn record_latency(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    if REMOTE.load(Ordering::Relaxed) {
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let mut out = std::io::stdout().lock();
        writeln!(out, "{} {micros}", cx.message().object_identifier)
            .and_then(|()| out.flush())
            .map_err(ReceiverError::msg)?;
        return Ok(());
    }
    let now = Instant::now();
    STARTS.lock().unwrap().push((cx.message().object_identifier, now));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Postgres,
    Sqlite,
}

#[derive(Debug, Parser)]
#[command(about = "outbox benchmarks: write and drain paths against raw SQL measured in the same run")]
struct Args {
    /// The database backend.
    #[arg(long, value_enum)]
    backend: BackendArg,
    /// `postgres://...` or a SQLite file path (created if missing; its tables are reset).
    #[arg(long)]
    database_url: String,
    /// One JSON object per line per case instead of a table.
    #[arg(long)]
    json: bool,
    /// Cases to run (comma-separated prefixes), e.g. `write,drain`.
    #[arg(long, default_value = "write,drain,coalesce,latency,memory")]
    cases: String,
    /// Backlog rows of the drain, coalesce and memory cases.
    #[arg(long, default_value_t = 100_000)]
    backlog: i64,
    /// save() calls per write measurement.
    #[arg(long, default_value_t = 3_000)]
    writes: i64,
    /// Internal: run as the worker process of the memory case.
    #[arg(long, hide = true)]
    memory_child: bool,
    /// Internal: run as the worker process of the latency-remote case.
    #[arg(long, hide = true)]
    latency_child: bool,
}

/// One measured case.
#[derive(Debug, Default)]
struct Figure {
    case: String,
    n: i64,
    workers: usize,
    rows_per_s: f64,
    baseline_rows_per_s: Option<f64>,
    ratio: Option<f64>,
    extra: Vec<(&'static str, Value)>,
}

/// What differs between backends: the hand-written SQL baselines.
trait BenchSql: OutboxConnection + R2D2Connection {
    const SETUP: &'static str;
    const RESET: &'static str;
    fn plain_insert(&mut self, item: &Item) -> QueryResult<()>;
    fn limit_insert(&mut self, item: &Item) -> QueryResult<()>;
    /// `rows` outbox rows of `category`: row i in shard `i % shards`, object `i % objects`.
    fn backlog(&mut self, rows: i64, shards: i64, objects: i64, category: i32) -> QueryResult<()>;
    /// Deletes up to 500 of the oldest rows with id above `after`; returns the
    /// highest id deleted (None when nothing was left). Keyset pagination keeps
    /// each batch from rescanning the index entries of rows already deleted.
    fn raw_delete_batch(&mut self, after: i64) -> QueryResult<Option<i64>>;
}

#[derive(QueryableByName)]
struct MaxId {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    id: Option<i64>,
}

const PAST: &str = "2016-08-01 00:00:00";

fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn past() -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(PAST, "%Y-%m-%d %H:%M:%S").expect("constant")
}

impl BenchSql for PgConnection {
    const SETUP: &'static str =
        "CREATE TABLE IF NOT EXISTS bench_items (id BIGINT PRIMARY KEY, shard BIGINT NOT NULL, name TEXT NOT NULL)";
    const RESET: &'static str = "TRUNCATE region_outbox, control_outbox, outbox_shard, outbox_quarantine, bench_items";

    fn plain_insert(&mut self, item: &Item) -> QueryResult<()> {
        diesel::insert_into(bench_items::table).values(item).execute(self).map(drop)
    }

    fn limit_insert(&mut self, item: &Item) -> QueryResult<()> {
        diesel::sql_query(
            "WITH m AS (INSERT INTO bench_items (id, shard, name) VALUES ($1, $2, $3) RETURNING id, shard) \
             INSERT INTO region_outbox (shard_scope, shard_identifier, category, object_identifier, payload, \
             scheduled_from, scheduled_for, date_added) SELECT 0, m.shard, 1, m.id, NULL, $4, $5, $4 FROM m",
        )
        .bind::<BigInt, _>(item.id)
        .bind::<BigInt, _>(item.shard)
        .bind::<Text, _>(&item.name)
        .bind::<Timestamp, _>(now())
        .bind::<Timestamp, _>(past())
        .execute(self)
        .map(drop)
    }

    fn backlog(&mut self, rows: i64, shards: i64, objects: i64, category: i32) -> QueryResult<()> {
        self.batch_execute(&format!(
            "INSERT INTO region_outbox (shard_scope, shard_identifier, category, object_identifier, payload, \
             scheduled_from, scheduled_for, date_added) \
             SELECT 0, g % {shards}, {category}, g % {objects}, NULL, now() AT TIME ZONE 'utc', '{PAST}', \
             now() AT TIME ZONE 'utc' FROM generate_series(1, {rows}) g; ANALYZE region_outbox"
        ))
    }

    fn raw_delete_batch(&mut self, after: i64) -> QueryResult<Option<i64>> {
        diesel::sql_query(
            "WITH d AS (DELETE FROM region_outbox WHERE id = ANY(ARRAY(\
             SELECT id FROM region_outbox WHERE id > $1 ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED)) RETURNING id) \
             SELECT max(id) AS id FROM d",
        )
        .bind::<BigInt, _>(after)
        .get_result::<MaxId>(self)
        .map(|m| m.id)
    }
}

impl BenchSql for SqliteConnection {
    const SETUP: &'static str =
        "CREATE TABLE IF NOT EXISTS bench_items (id BIGINT PRIMARY KEY, shard BIGINT NOT NULL, name TEXT NOT NULL)";
    const RESET: &'static str = "DELETE FROM region_outbox; DELETE FROM control_outbox; DELETE FROM outbox_shard; \
                                 DELETE FROM outbox_quarantine; DELETE FROM bench_items";

    fn plain_insert(&mut self, item: &Item) -> QueryResult<()> {
        diesel::insert_into(bench_items::table).values(item).execute(self).map(drop)
    }

    /// SQLite has no data-modifying CTE: two prepared statements in one transaction.
    fn limit_insert(&mut self, item: &Item) -> QueryResult<()> {
        self.transaction(|conn| {
            diesel::sql_query("INSERT INTO bench_items (id, shard, name) VALUES (?, ?, ?)")
                .bind::<BigInt, _>(item.id)
                .bind::<BigInt, _>(item.shard)
                .bind::<Text, _>(&item.name)
                .execute(conn)?;
            diesel::sql_query(
                "INSERT INTO region_outbox (shard_scope, shard_identifier, category, object_identifier, payload, \
                 scheduled_from, scheduled_for, date_added) VALUES (0, ?, 1, ?, NULL, ?, ?, ?)",
            )
            .bind::<BigInt, _>(item.shard)
            .bind::<BigInt, _>(item.id)
            .bind::<Timestamp, _>(now())
            .bind::<Timestamp, _>(past())
            .bind::<Timestamp, _>(now())
            .execute(conn)
            .map(drop)
        })
    }

    fn backlog(&mut self, rows: i64, shards: i64, objects: i64, category: i32) -> QueryResult<()> {
        self.batch_execute(&format!(
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {rows}) \
             INSERT INTO region_outbox (shard_scope, shard_identifier, category, object_identifier, payload, \
             scheduled_from, scheduled_for, date_added) \
             SELECT 0, x % {shards}, {category}, x % {objects}, NULL, datetime('now'), '{PAST}', datetime('now') FROM g"
        ))
    }

    fn raw_delete_batch(&mut self, after: i64) -> QueryResult<Option<i64>> {
        self.transaction(|conn| {
            let max = diesel::sql_query(
                "SELECT max(id) AS id FROM (SELECT id FROM region_outbox WHERE id > ? ORDER BY id LIMIT 500)",
            )
            .bind::<BigInt, _>(after)
            .get_result::<MaxId>(conn)?
            .id;
            if let Some(max) = max {
                diesel::sql_query("DELETE FROM region_outbox WHERE id > ? AND id <= ?")
                    .bind::<BigInt, _>(after)
                    .bind::<BigInt, _>(max)
                    .execute(conn)?;
            }
            Ok(max)
        })
    }
}

type Db<C> = Pool<ConnectionManager<C>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    outbox::registry().validate()?;
    match args.backend {
        BackendArg::Postgres => {
            run::<PgConnection>(&args, Pool::builder().max_size(12).build(ConnectionManager::new(&args.database_url))?)
        }
        BackendArg::Sqlite => {
            let url = args.database_url.trim_start_matches("sqlite://").to_string();
            let pool = Pool::builder()
                .max_size(12)
                .connection_customizer(Box::new(outbox::SqlitePragmas))
                .build(ConnectionManager::new(url))?;
            run::<SqliteConnection>(&args, pool)
        }
    }
}

fn run<C: BenchSql>(args: &Args, pool: Db<C>) -> Result<(), Box<dyn std::error::Error>> {
    if args.memory_child {
        return memory_child(pool);
    }
    if args.latency_child {
        return latency_child(pool, &args.database_url);
    }
    {
        let mut conn = pool.get()?;
        outbox::migrate(&mut *conn)?;
        conn.batch_execute(C::SETUP)?;
    }
    let backend = match args.backend {
        BackendArg::Postgres => "postgres",
        BackendArg::Sqlite => "sqlite",
    };
    let wanted = |case: &str| args.cases.split(',').any(|c| case.starts_with(c.trim()));
    let mut figures = Vec::new();
    let report = |f: &Figure| print_figure(f, backend, args.json);
    if !args.json {
        println!("{:<10} {:>8} {:>3} {:>12} {:>12} {:>7}  details", "case", "n", "w", "rows/s", "baseline/s", "ratio");
    }
    if wanted("write") {
        for threads in [1, 8] {
            let f = write_case(&pool, threads, args.writes)?;
            report(&f);
            figures.push(f);
        }
    }
    if wanted("drain") {
        for workers in [1, 2, 4] {
            let f = drain_case(&pool, workers, args.backlog)?;
            report(&f);
            figures.push(f);
        }
    }
    if wanted("coalesce") {
        let f = coalesce_case(&pool, args.backlog)?;
        report(&f);
        figures.push(f);
    }
    if wanted("latency") {
        let f = latency_case(&pool)?;
        report(&f);
        figures.push(f);
    }
    if wanted("latency-remote") && args.backend == BackendArg::Postgres {
        let f = latency_remote_case(&pool, args, backend)?;
        report(&f);
        figures.push(f);
    }
    if wanted("memory") {
        let f = memory_case(&pool, args, backend)?;
        report(&f);
        figures.push(f);
    }
    Ok(())
}

fn print_figure(f: &Figure, backend: &str, as_json: bool) {
    if as_json {
        let mut object = json!({
            "case": f.case,
            "backend": backend,
            "n": f.n,
            "workers": f.workers,
            "rows_per_s": round(f.rows_per_s),
            "baseline_rows_per_s": f.baseline_rows_per_s.map(round),
            "ratio": f.ratio.map(|r| (r * 1000.0).round() / 1000.0),
        });
        for (key, value) in &f.extra {
            object[*key] = value.clone();
        }
        println!("{object}");
    } else {
        let details: Vec<String> = f.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<10} {:>8} {:>3} {:>12.0} {:>12} {:>7}  {}",
            f.case,
            f.n,
            f.workers,
            f.rows_per_s,
            f.baseline_rows_per_s.map_or("-".into(), |b| format!("{b:.0}")),
            f.ratio.map_or("-".into(), |r| format!("{r:.3}")),
            details.join(" ")
        );
    }
}

fn round(x: f64) -> f64 {
    x.round()
}

fn reset<C: BenchSql>(pool: &Db<C>) -> Result<(), Box<dyn std::error::Error>> {
    pool.get()?.batch_execute(C::RESET)?;
    Ok(())
}

type SendError = Box<dyn std::error::Error + Send + Sync>;
type WriteOp<C> = fn(&mut C, &Item) -> Result<(), SendError>;

/// Runs `op` for ids `first..first + n` spread over `threads` connections; returns ops per second.
fn rate<C: BenchSql>(
    pool: &Db<C>,
    threads: usize,
    first: i64,
    n: i64,
    op: WriteOp<C>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let per_thread = n / threads as i64;
    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as i64)
            .map(|t| {
                let pool = pool.clone();
                scope.spawn(move || -> Result<(), SendError> {
                    let mut conn = pool.get()?;
                    for i in 0..per_thread {
                        let id = first + t * per_thread + i;
                        op(&mut conn, &Item { id, shard: id % 1000, name: format!("item {id}") })?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("writer thread").map_err(|e| e.to_string())?;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok((per_thread * threads as i64) as f64 / start.elapsed().as_secs_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// save() against a plain Diesel insert and against the one-statement limit,
/// interleaved over three rounds (medians), so drift in machine load hits all three.
fn write_case<C: BenchSql>(pool: &Db<C>, threads: usize, n: i64) -> Result<Figure, Box<dyn std::error::Error>> {
    reset(pool)?;
    // Warm up connections and prepared statements.
    rate(pool, threads, 1_000_000_000, 200.min(n), |c, item| Ok(item.save(c)?))?;
    let (mut plain, mut limit, mut save) = (Vec::new(), Vec::new(), Vec::new());
    let mut first = 0;
    for _ in 0..3 {
        reset(pool)?;
        plain.push(rate(pool, threads, first, n, |c, item| Ok(c.plain_insert(item)?))?);
        first += n;
        limit.push(rate(pool, threads, first, n, |c, item| Ok(c.limit_insert(item)?))?);
        first += n;
        save.push(rate(pool, threads, first, n, |c, item| Ok(item.save(c)?))?);
        first += n;
    }
    let (plain, limit, save) = (median(plain), median(limit), median(save));
    Ok(Figure {
        case: format!("write-{threads}"),
        n,
        workers: threads,
        rows_per_s: save,
        baseline_rows_per_s: Some(limit),
        ratio: Some(limit / save),
        extra: vec![("plain_insert_per_s", json!(plain.round())), ("limit_vs_plain", json!(round3(plain / limit)))],
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn count_rows<C: BenchSql>(pool: &Db<C>) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(outbox::pending_rows(&mut *pool.get()?)?.len() as i64)
}

/// Raw batched delete of a backlog: the database's own limit.
fn raw_delete_rate<C: BenchSql>(pool: &Db<C>, rows: i64) -> Result<f64, Box<dyn std::error::Error>> {
    reset(pool)?;
    pool.get()?.backlog(rows, 1000, rows, Category::Backlog as i32)?;
    let mut conn = pool.get()?;
    let start = Instant::now();
    let mut after = 0;
    while let Some(max) = conn.raw_delete_batch(after)? {
        after = max;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

fn worker<C: BenchSql>(pool: &Db<C>, workers: usize) -> Result<Worker<C>, Box<dyn std::error::Error>> {
    let mut builder = Worker::builder(pool.clone()).concurrency(workers);
    if let Ok(v) = std::env::var("BENCH_SHARDS") {
        builder = builder.batch_shards(v.parse()?);
    }
    if let Ok(v) = std::env::var("BENCH_ROWS") {
        builder = builder.batch_rows(v.parse()?);
    }
    Ok(builder.build()?)
}

fn drain_case<C: BenchSql>(pool: &Db<C>, workers: usize, rows: i64) -> Result<Figure, Box<dyn std::error::Error>> {
    let baseline = raw_delete_rate(pool, rows)?;
    reset(pool)?;
    pool.get()?.backlog(rows, 1000, rows, Category::Backlog as i32)?;
    let worker = worker(pool, workers)?;
    CALLS.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let drained = worker.run_until_idle()?;
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    let calls = CALLS.load(Ordering::Relaxed);
    let left = count_rows(pool)?;
    assert_eq!((calls as i64, left), (rows, 0), "every row delivered once, none left");
    Ok(Figure {
        case: format!("drain-{workers}"),
        n: rows,
        workers,
        rows_per_s: rate,
        baseline_rows_per_s: Some(baseline),
        ratio: Some(rate / baseline),
        extra: vec![("claims", json!(drained.claims)), ("rows_per_claim", json!(rows / drained.claims.max(1) as i64))],
    })
}

fn coalesce_case<C: BenchSql>(pool: &Db<C>, rows: i64) -> Result<Figure, Box<dyn std::error::Error>> {
    let baseline = raw_delete_rate(pool, rows)?;
    reset(pool)?;
    let objects = 1000;
    // 100 updates per object, every object in its own shard.
    pool.get()?.backlog(rows, objects, objects, Category::Backlog as i32)?;
    let worker = worker(pool, 2)?;
    CALLS.store(0, Ordering::Relaxed);
    let start = Instant::now();
    worker.run_until_idle()?;
    let elapsed = start.elapsed().as_secs_f64();
    let calls = CALLS.load(Ordering::Relaxed) as i64;
    assert_eq!(count_rows(pool)?, 0, "nothing left");
    Ok(Figure {
        case: "coalesce".into(),
        n: rows,
        workers: 2,
        rows_per_s: rows as f64 / elapsed,
        baseline_rows_per_s: Some(baseline),
        ratio: Some(rows as f64 / elapsed / baseline),
        extra: vec![
            ("objects", json!(objects)),
            ("receiver_calls", json!(calls)),
            ("calls_per_object", json!(round3(calls as f64 / objects as f64))),
            ("calls_per_s", json!((calls as f64 / elapsed).round())),
        ],
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

const PACED_PER_SECOND: u64 = 500;
const PACED_SECONDS: u64 = 10;

/// Commits 500 changes a second for 10 seconds, one `outbox::transaction` each
/// over 50 shards; returns the time `stamp` read right after each commit, by
/// object identifier, and the rate achieved.
fn produce_paced<C: BenchSql, T>(
    pool: &Db<C>,
    stamp: impl Fn() -> Result<T, Box<dyn std::error::Error>>,
) -> Result<(HashMap<i64, T>, f64), Box<dyn std::error::Error>> {
    let total = PACED_PER_SECOND * PACED_SECONDS;
    let mut committed = HashMap::with_capacity(total as usize);
    let mut conn = pool.get()?;
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_micros(i * 1_000_000 / PACED_PER_SECOND);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let object = outbox::transaction(&mut *conn, |conn| {
            outbox::write_region_message(conn, Scope::Shard, Category::Latency, (i % 50) as i64, None)
        })?;
        committed.insert(object, stamp()?);
    }
    Ok((committed, total as f64 / start.elapsed().as_secs_f64()))
}

/// A producer commits 500 changes a second for 10 seconds while a spawned worker
/// (woken by commits) drains; latency is commit to receiver start.
fn latency_case<C: BenchSql>(pool: &Db<C>) -> Result<Figure, Box<dyn std::error::Error>> {
    reset(pool)?;
    STARTS.lock().unwrap().clear();
    let handle = Worker::builder(pool.clone()).concurrency(2).poll_interval(Duration::from_secs(1)).build()?.spawn();
    std::thread::sleep(Duration::from_millis(300));
    let total = PACED_PER_SECOND * PACED_SECONDS;
    let (committed, produced_per_s) = produce_paced(pool, || Ok(Instant::now()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while STARTS.lock().unwrap().len() < total as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.shutdown();
    let starts = std::mem::take(&mut *STARTS.lock().unwrap());
    let mut latencies: Vec<f64> = starts
        .iter()
        .filter_map(|(object, started)| {
            // The in-process wake-up can start the receiver before the producer
            // reads the clock after commit: count that as zero.
            committed.get(object).map(|c| started.saturating_duration_since(*c).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Figure {
        case: "latency".into(),
        n: total as i64,
        workers: 2,
        rows_per_s: produced_per_s,
        baseline_rows_per_s: None,
        ratio: None,
        extra: vec![
            ("delivered", json!(latencies.len())),
            ("p50_ms", json!(round3(percentile(&latencies, 50.0)))),
            ("p95_ms", json!(round3(percentile(&latencies, 95.0)))),
            ("p99_ms", json!(round3(percentile(&latencies, 99.0)))),
            ("max_ms", json!(round3(latencies.last().copied().unwrap_or(f64::NAN)))),
        ],
    })
}

/// The latency-remote case's worker process: a spawned worker whose receivers
/// print `object_id unix_micros`; prints `ready` once listening, stops when stdin
/// closes.
fn latency_child<C: BenchSql>(pool: Db<C>, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    REMOTE.store(true, Ordering::Relaxed);
    let builder = Worker::builder(pool).concurrency(2).poll_interval(Duration::from_secs(1)).listen_url(url);
    let handle = builder.build()?.spawn();
    std::thread::sleep(Duration::from_millis(300));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    // Blocks until the parent closes our stdin.
    std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())?;
    handle.shutdown();
    Ok(())
}

/// Like `latency`, but the worker runs in a child process: only NOTIFY (or the
/// 1 s poll) wakes it. Commit times and receiver starts are compared on the wall
/// clock (same machine).
fn latency_remote_case<C: BenchSql>(
    pool: &Db<C>,
    args: &Args,
    backend: &str,
) -> Result<Figure, Box<dyn std::error::Error>> {
    reset(pool)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--backend", backend, "--database-url", &args.database_url, "--latency-child"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let received = std::sync::Arc::new(Mutex::new(Vec::<(i64, u128)>::new()));
    let reader = {
        let received = received.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "ready" {
                    let _ = ready_tx.send(());
                    continue;
                }
                let mut parts = line.split_whitespace();
                if let (Some(Ok(object)), Some(Ok(micros))) =
                    (parts.next().map(str::parse::<i64>), parts.next().map(str::parse::<u128>))
                {
                    received.lock().unwrap().push((object, micros));
                }
            }
        })
    };
    if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return Err("latency child did not start".into());
    }
    let total = PACED_PER_SECOND * PACED_SECONDS;
    let (committed, produced_per_s) =
        produce_paced(pool, || Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().len() < total as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child.stdin.take());
    let status = child.wait()?;
    let _ = reader.join();
    if !status.success() {
        return Err(format!("latency child failed: {status}").into());
    }
    let received = std::mem::take(&mut *received.lock().unwrap());
    let mut latencies: Vec<f64> = received
        .iter()
        .filter_map(|(object, started)| {
            // Clocks read in two processes: a receiver that starts before the
            // producer reads the clock after commit counts as zero.
            committed.get(object).map(|c| started.saturating_sub(*c) as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Figure {
        case: "latency-remote".into(),
        n: total as i64,
        workers: 2,
        rows_per_s: produced_per_s,
        baseline_rows_per_s: None,
        ratio: None,
        extra: vec![
            ("delivered", json!(latencies.len())),
            ("p50_ms", json!(round3(percentile(&latencies, 50.0)))),
            ("p95_ms", json!(round3(percentile(&latencies, 95.0)))),
            ("p99_ms", json!(round3(percentile(&latencies, 99.0)))),
            ("max_ms", json!(round3(latencies.last().copied().unwrap_or(f64::NAN)))),
        ],
    })
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn current_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// The memory case's worker process: drain what is there, print peak RSS as JSON.
fn memory_child<C: BenchSql>(pool: Db<C>) -> Result<(), Box<dyn std::error::Error>> {
    let before = current_rss_kb();
    let start = Instant::now();
    let worker = Worker::builder(pool.clone()).concurrency(2).build()?;
    worker.run_until_idle()?;
    println!(
        "{}",
        json!({ "rss_before_kb": before, "peak_rss_kb": peak_rss_kb(), "seconds": start.elapsed().as_secs_f64(),
                "calls": CALLS.load(Ordering::Relaxed) })
    );
    Ok(())
}

fn memory_case<C: BenchSql>(pool: &Db<C>, args: &Args, backend: &str) -> Result<Figure, Box<dyn std::error::Error>> {
    reset(pool)?;
    pool.get()?.backlog(args.backlog, 1000, args.backlog, Category::Backlog as i32)?;
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--backend", backend, "--database-url", &args.database_url, "--memory-child"])
        .output()?;
    if !output.status.success() {
        return Err(format!("memory child failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let child: Value = serde_json::from_slice(output.stdout.trim_ascii())?;
    let peak_mb = child["peak_rss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0;
    let before_mb = child["rss_before_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0;
    let left = count_rows(pool)?;
    assert_eq!(left, 0, "the child drained everything");
    Ok(Figure {
        case: "memory".into(),
        n: args.backlog,
        workers: 2,
        rows_per_s: args.backlog as f64 / child["seconds"].as_f64().unwrap_or(f64::NAN),
        baseline_rows_per_s: None,
        ratio: None,
        extra: vec![("peak_rss_mb", json!(round3(peak_mb))), ("rss_at_start_mb", json!(round3(before_mb)))],
    })
}
