//! Backfill: interrupted and resumed gives exactly one outbox row per existing
//! row; a raised replication version restarts; a lower configured version
//! pauses; the rate limit paces batches. Both backends.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use outbox::backfill::{self, BackfillEnd, BackfillOptions, BatchOutcome};
use outbox::testing::TestDb;
use outbox::{
    Backend, CategoryInfo, DbConn, Direction, OutboxCategory, OutboxConnection, OutboxModel, PoisonPolicy, ScopeInfo,
};

diesel::table! {
    teams (id) {
        id -> BigInt,
        organization_id -> BigInt,
        name -> Text,
    }
}

// Written by hand rather than with #[outbox_category] so these tests depend on
// the backfill alone.
const ORGANIZATION: ScopeInfo = ScopeInfo { id: 0, name: "Organization", declared_in: module_path!() };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    TeamUpdate,
}

impl OutboxCategory for Category {
    const ALL: &'static [Self] = &[Category::TeamUpdate];
    const INFOS: &'static [CategoryInfo] = &[CategoryInfo {
        id: 2,
        name: "TeamUpdate",
        scope: Some(&ORGANIZATION),
        retired: false,
        discard: false,
        transactional: false,
        max_attempts: None,
        on_poison: PoisonPolicy::Block,
        declared_in: module_path!(),
    }];
    fn id(self) -> i32 {
        2
    }
    fn info(self) -> &'static CategoryInfo {
        &Self::INFOS[0]
    }
}

thread_local! {
    /// A row id whose outbox rows fail to build: a crash in the middle of a batch.
    static FAIL_AT: Cell<Option<i64>> = const { Cell::new(None) };
}

/// A team model at replication version `V`.
struct Team<const V: i32> {
    id: i64,
    organization_id: i64,
}

impl<const V: i32> OutboxModel for Team<V> {
    type Category = Category;
    const DIRECTION: Direction = Direction::Region;
    const MODEL_NAME: &'static str = "Team";
    const TABLE_NAME: &'static str = "teams";
    const REPLICATION_VERSION: i32 = V;

    fn outbox_category() -> Category {
        Category::TeamUpdate
    }
    fn object_identifier(&self) -> outbox::Result<i64> {
        Ok(self.id)
    }
    fn shard_identifier(&self) -> outbox::Result<i64> {
        if FAIL_AT.with(Cell::get) == Some(self.id) {
            return Err(outbox::Error::Migration(format!("simulated crash at team {}", self.id)));
        }
        Ok(self.organization_id)
    }
    fn __outbox_save(&self, _rows: &[outbox::OutboxRow], _db: DbConn<'_>) -> outbox::Result<()> {
        unimplemented!("backfill tests never save")
    }
    fn __outbox_update(&self, _db: DbConn<'_>) -> QueryResult<usize> {
        unimplemented!("backfill tests never update")
    }
    fn __outbox_insert_all(_models: &[Self], _rows: &[outbox::OutboxRow], _db: DbConn<'_>) -> outbox::Result<()> {
        unimplemented!("backfill tests seed with SQL")
    }
    fn __outbox_delete_all(_models: &[Self], _rows: &[outbox::OutboxRow], _db: DbConn<'_>) -> outbox::Result<()> {
        unimplemented!("backfill tests never delete")
    }
    fn __outbox_load(_id: i64, _db: DbConn<'_>) -> QueryResult<Option<Self>> {
        unimplemented!("backfill tests never deliver")
    }
    fn __outbox_load_batch(after: i64, limit: i64, db: DbConn<'_>) -> QueryResult<Vec<Self>> {
        let rows: Vec<(i64, i64, String)> = outbox::__private::with_db!(db, |c| teams::table
            .filter(teams::id.gt(after))
            .order(teams::id)
            .limit(limit)
            .load(c))?;
        Ok(rows.into_iter().map(|(id, organization_id, _)| Team { id, organization_id }).collect())
    }
}

/// Seeds `teams` with ids 1..=n minus every 7th (gaps must not matter).
fn seed<C: OutboxConnection>(conn: &mut C, n: i64) -> Vec<i64> {
    outbox::migrate(conn).unwrap();
    conn.batch_execute(
        "CREATE TABLE teams (id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, name TEXT NOT NULL)",
    )
    .unwrap();
    let ids: Vec<i64> = (1..=n).filter(|i| i % 7 != 0).collect();
    let values: Vec<String> = ids.iter().map(|i| format!("({i}, {}, 'team {i}')", i % 5)).collect();
    conn.batch_execute(&format!("INSERT INTO teams (id, organization_id, name) VALUES {}", values.join(", "))).unwrap();
    ids
}

/// Outbox rows per object identifier.
fn rows_per_object<C: OutboxConnection>(conn: &mut C) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for row in outbox::pending_rows(conn).unwrap() {
        assert_eq!((row.category, row.shard_scope), (2, 0));
        assert_eq!(row.shard_identifier, row.object_identifier % 5, "shard of team {}", row.object_identifier);
        *counts.entry(row.object_identifier).or_insert(0) += 1;
    }
    counts
}

fn exactly_once(ids: &[i64]) -> BTreeMap<i64, usize> {
    ids.iter().map(|i| (*i, 1)).collect()
}

fn fast(batch_size: usize) -> BackfillOptions {
    BackfillOptions { batch_size, rows_per_minute: None, ..BackfillOptions::default() }
}

fn each_db(check: fn(&TestDb, &mut dyn FnMut() -> Box<dyn Conn>)) {
    for db in TestDb::all() {
        eprintln!("backend: {}", db.name());
        let mut open = || -> Box<dyn Conn> {
            match db.backend() {
                Backend::Sqlite => Box::new(db.sqlite_connection()),
                Backend::Postgres => Box::new(db.pg_connection()),
            }
        };
        check(&db, &mut open);
    }
}

/// Object-safe access to both connection types, so each test body is written once.
trait Conn {
    fn sqlite(&mut self) -> Option<&mut diesel::SqliteConnection> {
        None
    }
    fn pg(&mut self) -> Option<&mut diesel::PgConnection> {
        None
    }
}
impl Conn for diesel::SqliteConnection {
    fn sqlite(&mut self) -> Option<&mut diesel::SqliteConnection> {
        Some(self)
    }
}
impl Conn for diesel::PgConnection {
    fn pg(&mut self) -> Option<&mut diesel::PgConnection> {
        Some(self)
    }
}

/// Runs a generic body on whichever connection `conn` is.
macro_rules! on {
    ($conn:expr, |$c:ident| $body:expr) => {{
        let conn: &mut dyn Conn = &mut *$conn;
        if let Some($c) = conn.sqlite() {
            $body
        } else {
            let $c = conn.pg().expect("a SQLite or PostgreSQL connection");
            $body
        }
    }};
}

#[test]
fn interrupted_backfill_resumes_with_exactly_one_row_per_existing_row() {
    each_db(|_db, open| {
        let mut conn = open();
        let ids = on!(conn, |c| seed(c, 300));

        // The third batch of 50 fails half-way: its transaction rolls back.
        let third_batch_row = ids[120];
        FAIL_AT.with(|f| f.set(Some(third_batch_row)));
        let err = on!(conn, |c| backfill::run::<Team<1>, _>(c, fast(50))).unwrap_err();
        assert!(err.to_string().contains("simulated crash"), "{err}");
        FAIL_AT.with(|f| f.set(None));
        let mark = on!(conn, |c| backfill::watermark::<Team<1>, _>(c)).unwrap().expect("watermark stored");
        assert_eq!((mark.table_name.as_str(), mark.low_id, mark.version), ("teams", ids[99] + 1, 1));
        assert_eq!(
            on!(conn, |c| rows_per_object(c)),
            exactly_once(&ids[..100]),
            "two batches committed, not the third"
        );

        // A new process (connection) resumes after the last committed batch.
        drop(conn);
        let mut conn = open();
        let summary = on!(conn, |c| backfill::run::<Team<1>, _>(c, fast(50))).unwrap();
        assert_eq!(summary.end, BackfillEnd::Done);
        assert_eq!(summary.rows_written, (ids.len() - 100) as u64);
        assert_eq!(on!(conn, |c| rows_per_object(c)), exactly_once(&ids));
        let mark = on!(conn, |c| backfill::watermark::<Team<1>, _>(c)).unwrap().unwrap();
        assert_eq!(mark.version, 2, "done: stored version is replication_version + 1");
        assert!(on!(conn, |c| backfill::is_done::<Team<1>, _>(c)).unwrap());

        // Done means done: another run writes nothing.
        let again = on!(conn, |c| backfill::run::<Team<1>, _>(c, fast(50))).unwrap();
        assert_eq!((again.rows_written, again.end), (0, BackfillEnd::Done));
        assert_eq!(on!(conn, |c| rows_per_object(c)), exactly_once(&ids));
    });
}

#[test]
fn stepwise_batches_and_max_batches_resume_where_they_stopped() {
    each_db(|_db, open| {
        let mut conn = open();
        let ids = on!(conn, |c| seed(c, 40));
        let first = on!(conn, |c| backfill::backfill_batch::<Team<1>, _>(c, &fast(10))).unwrap();
        assert_eq!(first, BatchOutcome::Progress { rows: 10, outbox_rows: 10, low_id: ids[9] + 1 });
        let sliced =
            on!(conn, |c| backfill::run::<Team<1>, _>(c, BackfillOptions { max_batches: Some(2), ..fast(10) }))
                .unwrap();
        assert_eq!((sliced.batches, sliced.rows_written, sliced.end), (2, 20, BackfillEnd::Stopped));
        let mut seen = Vec::new();
        let rest =
            on!(conn, |c| backfill::run_with_progress::<Team<1>, _, _>(c, fast(10), |p| seen.push(p.clone()))).unwrap();
        assert_eq!(rest.rows_written, (ids.len() - 30) as u64);
        let last = seen.last().expect("progress reported");
        assert!(last.finished);
        assert_eq!(last.rows_done, rest.rows_written);
        assert_eq!(on!(conn, |c| rows_per_object(c)), exactly_once(&ids));
    });
}

#[test]
fn raised_replication_version_restarts_from_the_beginning() {
    each_db(|_db, open| {
        let mut conn = open();
        let ids = on!(conn, |c| seed(c, 60));
        assert_eq!(on!(conn, |c| backfill::run::<Team<1>, _>(c, fast(25))).unwrap().end, BackfillEnd::Done);
        on!(conn, |c| c.batch_execute("DELETE FROM region_outbox")).unwrap();

        // Version 2 (say a receiver learned a new field): everything again.
        let summary = on!(conn, |c| backfill::run::<Team<2>, _>(c, fast(25))).unwrap();
        assert_eq!((summary.rows_written, summary.end), (ids.len() as u64, BackfillEnd::Done));
        assert_eq!(on!(conn, |c| rows_per_object(c)), exactly_once(&ids));
        assert_eq!(on!(conn, |c| backfill::watermark::<Team<2>, _>(c)).unwrap().unwrap().version, 3);

        // A version raised in the middle of a backfill restarts it too.
        on!(conn, |c| c.batch_execute("DELETE FROM region_outbox")).unwrap();
        on!(conn, |c| backfill::run::<Team<3>, _>(c, BackfillOptions { max_batches: Some(1), ..fast(25) })).unwrap();
        let summary = on!(conn, |c| backfill::run::<Team<4>, _>(c, fast(25))).unwrap();
        assert_eq!(summary.rows_written, ids.len() as u64, "version 4 starts again from id 0");
        let counts = on!(conn, |c| rows_per_object(c));
        assert!(counts.iter().take(25).all(|(_, n)| *n == 2) && counts.iter().skip(25).all(|(_, n)| *n == 1));
    });
}

#[test]
fn lower_configured_version_pauses_without_losing_the_place() {
    each_db(|_db, open| {
        let mut conn = open();
        let ids = on!(conn, |c| seed(c, 50));
        on!(conn, |c| backfill::run::<Team<2>, _>(c, BackfillOptions { max_batches: Some(1), ..fast(20) })).unwrap();
        let before = on!(conn, |c| backfill::watermark::<Team<2>, _>(c)).unwrap().unwrap();
        assert_eq!((before.low_id, before.version), (ids[19] + 1, 2));

        let paused = BackfillOptions { configured_version: Some(1), ..fast(20) };
        let summary = on!(conn, |c| backfill::run::<Team<2>, _>(c, paused.clone())).unwrap();
        assert_eq!((summary.rows_written, summary.end), (0, BackfillEnd::Paused { configured: 1, coded: 2 }));
        assert_eq!(
            on!(conn, |c| backfill::backfill_batch::<Team<2>, _>(c, &paused)).unwrap(),
            BatchOutcome::Paused { configured: 1, coded: 2 }
        );
        assert_eq!(on!(conn, |c| backfill::watermark::<Team<2>, _>(c)).unwrap().unwrap(), before);
        assert_eq!(on!(conn, |c| rows_per_object(c)).len(), 20);

        // Configured back up to the coded version: it resumes where it paused.
        let resumed = BackfillOptions { configured_version: Some(2), ..fast(20) };
        let summary = on!(conn, |c| backfill::run::<Team<2>, _>(c, resumed)).unwrap();
        assert_eq!((summary.rows_written, summary.end), ((ids.len() - 20) as u64, BackfillEnd::Done));
        assert_eq!(on!(conn, |c| rows_per_object(c)), exactly_once(&ids));
    });
}

#[test]
fn rate_limit_paces_batches() {
    let db = TestDb::sqlite();
    let mut conn = db.sqlite_connection();
    let ids = seed(&mut conn, 35); // 30 rows
    assert_eq!(ids.len(), 30);
    let started = Instant::now();
    // 1,200 rows a minute = 20 a second: 30 rows in batches of 10 take >= 1 s
    // before the third batch and 1.5 s before the final (empty) check.
    let options = BackfillOptions { batch_size: 10, rows_per_minute: Some(1_200), ..BackfillOptions::default() };
    let summary = backfill::run::<Team<1>, _>(&mut conn, options).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!((summary.rows_written, summary.batches), (30, 3));
    assert!(elapsed >= 1.4, "30 rows at 20 rows/s took only {elapsed:.2}s");
    assert!(elapsed < 10.0, "took {elapsed:.2}s");

    // A batch never exceeds a minute's budget.
    let db = TestDb::sqlite();
    let mut conn = db.sqlite_connection();
    seed(&mut conn, 35);
    let first = backfill::backfill_batch::<Team<1>, _>(
        &mut conn,
        &BackfillOptions { batch_size: 1_000, rows_per_minute: Some(7), ..BackfillOptions::default() },
    )
    .unwrap();
    assert!(matches!(first, BatchOutcome::Progress { rows: 7, .. }), "{first:?}");
}
