//! Per-shard order, exclusive delivery, coalescing and rows written during
//! delivery, on both backends.

#[macro_use]
mod drain_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, R2D2Connection};
use outbox::testing::{assert_no_pending, insert_raw_rows, region_row, TestDb};
use outbox::{Delivery, OutboxConnection, ReceiverError, Worker};

use drain_support::{pool, serial};

scope!(SHARDED, 0);
category!(SEQUENCE, 1, SHARDED);
category!(ITEM_UPDATE, 2, SHARDED);
category!(ECHO, 3, SHARDED);
region_receiver!(1, on_sequence);
region_receiver!(2, on_item_update);
region_receiver!(3, on_echo);

#[derive(Debug, Clone)]
struct Call {
    shard: i64,
    seq: i64,
    thread: String,
    start: Instant,
    end: Instant,
}

static CALLS: Mutex<Vec<Call>> = Mutex::new(Vec::new());

fn on_sequence(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let start = Instant::now();
    std::thread::sleep(Duration::from_micros(300));
    let m = cx.message();
    let seq = m.payload.as_ref().and_then(|p| p["seq"].as_i64()).ok_or_else(|| ReceiverError::msg("no seq"))?;
    let call = Call {
        shard: m.shard_identifier,
        seq,
        thread: format!("{:?}", std::thread::current().id()),
        start,
        end: Instant::now(),
    };
    CALLS.lock().unwrap().push(call);
    Ok(())
}

fn workers<C>(pool: &Pool<ConnectionManager<C>>, threads: usize, owner: &str) -> Worker<C>
where
    C: OutboxConnection + R2D2Connection,
{
    Worker::builder(pool.clone()).concurrency(threads).batch_shards(10).batch_rows(40).owner(owner).build().unwrap()
}

fn eight_workers<C>(pool: Pool<ConnectionManager<C>>, name: &str)
where
    C: OutboxConnection + R2D2Connection,
{
    CALLS.lock().unwrap().clear();
    let mut conn = pool.get().unwrap();
    let mut rows = Vec::new();
    for seq in 0..5 {
        for shard in 0..200 {
            rows.push(region_row(0, shard, 1, shard * 100 + seq, Some(serde_json::json!({ "seq": seq }))));
        }
    }
    insert_raw_rows(&mut conn, &rows).unwrap();
    drop(conn);
    // Two "processes" (workers with their own owner) of four threads each.
    let (a, b) = (workers(&pool, 4, "a"), workers(&pool, 4, "b"));
    let reports = std::thread::scope(|s| {
        let ta = s.spawn(|| a.run_until_idle().unwrap());
        let tb = s.spawn(|| b.run_until_idle().unwrap());
        [ta.join().unwrap(), tb.join().unwrap()]
    });
    // A worker that found nothing while the other held the last shards stops early; finish.
    let rest = a.run_until_idle().unwrap();
    let delivered: u64 = reports.iter().map(|r| r.delivered).sum::<u64>() + rest.delivered;
    assert_eq!(delivered, 1000, "{name}");
    assert_no_pending(&mut pool.get().unwrap());

    let calls = CALLS.lock().unwrap().clone();
    assert_eq!(calls.len(), 1000, "{name}: every row delivered exactly once here");
    let threads: std::collections::HashSet<_> = calls.iter().map(|c| c.thread.clone()).collect();
    assert!(threads.len() > 1, "{name}: several workers shared the work");
    let mut by_shard: BTreeMap<i64, Vec<Call>> = BTreeMap::new();
    for c in calls {
        by_shard.entry(c.shard).or_default().push(c);
    }
    assert_eq!(by_shard.len(), 200);
    for (shard, mut calls) in by_shard {
        let seqs: Vec<i64> = calls.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4], "{name}: shard {shard} delivered in order");
        calls.sort_by_key(|c| c.start);
        for w in calls.windows(2) {
            assert!(w[1].start >= w[0].end, "{name}: shard {shard} had overlapping deliveries");
        }
    }
}

#[test]
fn eight_workers_on_two_hundred_shards_keep_per_shard_order() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 10);
        dispatch!(&pool, |p| eight_workers(p.clone(), db.name()));
    }
}

// ---- coalescing: 1,000 updates to 10 objects ----

static SEEN: Mutex<Vec<(i64, i64, i64)>> = Mutex::new(Vec::new());

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    version: i64,
}

fn read_version(cx: &mut Delivery<'_>, id: i64) -> Result<i64, ReceiverError> {
    let q = format!("SELECT version FROM items WHERE id = {id}");
    let rows: Vec<Version> = match outbox::DbConn::from_any(cx.connection_any()).expect("connection") {
        outbox::DbConn::Sqlite(c) => diesel::sql_query(q).load(c)?,
        outbox::DbConn::Pg(c) => diesel::sql_query(q).load(c)?,
    };
    Ok(rows.first().map_or(-1, |r| r.version))
}

fn on_item_update(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let m = cx.message().clone();
    let written = m.payload.as_ref().and_then(|p| p["version"].as_i64()).unwrap_or(-1);
    let seen = read_version(cx, m.object_identifier)?;
    SEEN.lock().unwrap().push((m.object_identifier, written, seen));
    Ok(())
}

fn update_items<C: OutboxConnection>(conn: &mut C, updates: i64, base: i64) {
    for i in 0..updates {
        let (object, version) = (i % 10, base + i / 10 + 1);
        outbox::transaction(conn, |conn| {
            crate::exec(conn, &format!("UPDATE items SET version = {version} WHERE id = {object}"))?;
            insert_raw_rows(conn, &[region_row(0, 7, 2, object, Some(serde_json::json!({ "version": version })))])
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    }
}

fn exec<C: OutboxConnection>(conn: &mut C, sql: &str) -> QueryResult<usize> {
    match conn.db() {
        outbox::DbConn::Sqlite(c) => diesel::sql_query(sql).execute(c),
        outbox::DbConn::Pg(c) => diesel::sql_query(sql).execute(c),
    }
}

fn thousand_updates<C>(pool: Pool<ConnectionManager<C>>, name: &str)
where
    C: OutboxConnection + R2D2Connection,
{
    SEEN.lock().unwrap().clear();
    let mut conn = pool.get().unwrap();
    exec(&mut *conn, "CREATE TABLE items (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)").unwrap();
    for id in 0..10 {
        exec(&mut *conn, &format!("INSERT INTO items (id, version) VALUES ({id}, 0)")).unwrap();
    }

    // All written first: one call per object, each seeing the final state.
    // Coalescing spans the rows one claim loads (`batch_rows`, 1,000 by default).
    update_items(&mut *conn, 1000, 0);
    let report = Worker::builder(pool.clone()).concurrency(2).build().unwrap().run_until_idle().unwrap();
    assert_no_pending(&mut *conn);
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    assert_eq!(seen.len(), 10, "{name}: 1,000 rows coalesced into one call per object");
    assert_eq!(report.coalesced, 990, "{name}");
    for (object, written, read) in &seen {
        assert_eq!((*written, *read), (100, 100), "{name}: object {object} delivered as its latest state");
    }

    // Written while workers run: every call sees at least the state its row was written
    // with, the last call per object sees the final state, and calls stay far fewer than updates.
    let handle =
        Worker::builder(pool.clone()).concurrency(2).poll_interval(Duration::from_millis(20)).build().unwrap().spawn();
    update_items(&mut *conn, 1000, 100);
    assert!(
        drain_support::wait_until(Duration::from_secs(30), || outbox::pending_rows(&mut *conn).unwrap().is_empty()),
        "{name}: drained"
    );
    handle.shutdown();
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    assert!(seen.len() <= 1000, "{name}: {} calls for 1,000 updates", seen.len());
    let mut last: HashMap<i64, i64> = HashMap::new();
    for (object, written, read) in &seen {
        assert!(read >= written, "{name}: object {object} read version {read} older than its row's {written}");
        last.insert(*object, *read);
    }
    for object in 0..10 {
        assert_eq!(last.get(&object), Some(&200), "{name}: object {object} ends at the latest committed state");
    }
    eprintln!("{name}: {} calls for 1,000 concurrent updates", seen.len());
}

#[test]
fn thousand_updates_to_ten_objects_coalesce_to_latest_state() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 4);
        dispatch!(&pool, |p| thousand_updates(p.clone(), db.name()));
    }
}

// ---- rows written while the receiver runs ----

static ECHOES: Mutex<Vec<(i64, i64, u32)>> = Mutex::new(Vec::new());

fn on_echo(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let m = cx.message().clone();
    let first = ECHOES.lock().unwrap().is_empty();
    ECHOES.lock().unwrap().push((m.object_identifier, m.id, m.coalesced));
    if first {
        // A newer row of the same group, committed while this delivery runs.
        let row = region_row(0, 9, 3, m.object_identifier, Some(serde_json::json!({ "during": true })));
        let ids = match outbox::DbConn::from_any(cx.connection_any()).expect("connection") {
            outbox::DbConn::Sqlite(c) => insert_raw_rows(c, &[row]),
            outbox::DbConn::Pg(c) => insert_raw_rows(c, &[row]),
        }
        .map_err(ReceiverError::from)?;
        assert!(ids[0] > m.id);
    }
    Ok(())
}

fn written_during_delivery<C>(pool: Pool<ConnectionManager<C>>, name: &str)
where
    C: OutboxConnection + R2D2Connection,
{
    ECHOES.lock().unwrap().clear();
    let mut conn = pool.get().unwrap();
    let ids = insert_raw_rows(&mut *conn, &[region_row(0, 9, 3, 42, None), region_row(0, 9, 3, 42, None)]).unwrap();
    let worker = workers(&pool, 1, "d");
    let report = worker.run_until_idle().unwrap();
    let echoes = ECHOES.lock().unwrap().clone();
    assert_eq!(echoes.len(), 2, "{name}: the row written during delivery was delivered next: {echoes:?}");
    assert_eq!(echoes[0], (42, ids[1], 2), "{name}: first delivery is the newest of the two rows");
    assert!(echoes[1].1 > ids[1] && echoes[1].2 == 1, "{name}: then the row written during delivery");
    assert_eq!(report.delivered, 2);
    assert_no_pending(&mut *conn);
}

#[test]
fn rows_written_during_delivery_survive_and_are_delivered_next() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 2);
        dispatch!(&pool, |p| written_during_delivery(p.clone(), db.name()));
    }
}
