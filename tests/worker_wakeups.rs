//! Flush policies and workers: Synchronous delivers before `transaction`
//! returns, Notify wakes a sleeping worker well under its poll interval
//! (in-process on both backends, and through PostgreSQL NOTIFY from any
//! connection), graceful shutdown, and surviving lost connections.

#[macro_use]
mod drain_support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, Pool, R2D2Connection};
use outbox::drain::{transaction_synchronous, Drainer, SyncFlushError};
use outbox::testing::{assert_no_pending, insert_raw_rows, pending, region_row, Faults, TestDb};
use outbox::{Delivery, FlushPolicy, OutboxConnection, ReceiverError, Worker};

use drain_support::{pool, serial, wait_until};

scope!(SHARD, 0);
category!(EVENT, 40, SHARD);
region_receiver!(40, record);

static DELIVERED: Mutex<Vec<i64>> = Mutex::new(Vec::new());

fn record(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    DELIVERED.lock().unwrap().push(cx.message().object_identifier);
    Ok(())
}

fn delivered() -> Vec<i64> {
    DELIVERED.lock().unwrap().clone()
}

fn write<C: OutboxConnection>(c: &mut C, object: i64) -> Result<Vec<i64>, diesel::result::Error> {
    insert_raw_rows(c, &[region_row(0, object % 3, 40, object, None)])
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
}

fn synchronous<C: OutboxConnection + R2D2Connection>(pool: Pool<ConnectionManager<C>>, name: &str) {
    DELIVERED.lock().unwrap().clear();
    let faults = Faults::new();
    let drainer = Drainer::builder().resource(faults.clone()).build().unwrap();
    let mut conn = pool.get().unwrap();
    let c = &mut *conn;
    transaction_synchronous(c, &drainer, |c| write(c, 1)).unwrap();
    assert_eq!(delivered(), vec![1], "{name}: delivered before transaction_synchronous returned");
    assert_no_pending(c);

    // A failing receiver: the data committed, the error says so, the row waits for workers.
    faults.fail(40, None);
    let err = transaction_synchronous(c, &drainer, |c| write(c, 2)).unwrap_err();
    assert!(err.committed(), "{name}");
    assert!(err.to_string().contains("committed"), "{name}: {err}");
    match err {
        SyncFlushError::Undelivered { value, error } => {
            assert_eq!(value.len(), 1);
            assert_eq!(error.failures.len(), 1);
        }
        SyncFlushError::Transaction(e) => panic!("{name}: {e}"),
    }
    assert_eq!(pending(c, Some(40)).len(), 1, "{name}: kept for retry");

    // A rollback delivers nothing and says nothing committed.
    let err = transaction_synchronous(c, &drainer, |c| {
        write(c, 3)?;
        Err::<(), _>(diesel::result::Error::RollbackTransaction)
    })
    .unwrap_err();
    assert!(!err.committed());
    assert_eq!(pending(c, Some(40)).len(), 1);

    // transaction_with + Drainer::flush is the same, in two steps; Deferred does nothing.
    faults.clear_all();
    let (_, committed) = outbox::transaction_with(c, FlushPolicy::Deferred, |c| write(c, 4)).unwrap();
    drainer.flush(c, &committed.unwrap()).unwrap();
    assert_eq!(delivered(), vec![1], "{name}: Deferred delivers nothing");
}

#[test]
fn synchronous_flush_delivers_before_the_transaction_returns() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 2);
        dispatch!(&pool, |p| synchronous(p.clone(), db.name()));
    }
}

fn notify_wakes<C: OutboxConnection + R2D2Connection>(pool: Pool<ConnectionManager<C>>, name: &str) {
    DELIVERED.lock().unwrap().clear();
    // A 10 s poll interval: only a wake-up can deliver within 2 s.
    let handle = Worker::builder(pool.clone()).poll_interval(Duration::from_secs(10)).build().unwrap().spawn();
    std::thread::sleep(Duration::from_millis(300)); // let it finish its first (empty) pass and sleep
    let mut conn = pool.get().unwrap();
    let start = Instant::now();
    outbox::transaction(&mut *conn, |c| write(c, 10)).unwrap();
    assert!(wait_until(Duration::from_secs(2), || delivered() == vec![10]), "{name}: woken in-process");
    eprintln!("{name}: in-process wake-up delivered in {:?}", start.elapsed());
    handle.shutdown();
}

#[test]
fn notify_wakes_a_sleeping_worker_well_under_the_poll_interval() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 4);
        dispatch!(&pool, |p| notify_wakes(p.clone(), db.name()));
    }
}

#[test]
fn postgres_notify_from_another_connection_wakes_listening_workers() {
    let _g = serial();
    let Some(db) = TestDb::postgres() else { return };
    DELIVERED.lock().unwrap().clear();
    let drain_support::AnyPool::Pg(pool) = pool(&db, 4) else { unreachable!() };
    let handle = Worker::builder(pool.clone()).poll_interval(Duration::from_secs(10)).build().unwrap().spawn();
    std::thread::sleep(Duration::from_millis(500));
    // A plain insert on a connection outside this process's wake-ups: only NOTIFY can wake the worker.
    let mut other = db.pg_connection();
    let start = Instant::now();
    write(&mut other, 20).unwrap();
    assert!(wait_until(Duration::from_secs(2), || delivered() == vec![20]), "woken by NOTIFY");
    eprintln!("postgres: NOTIFY wake-up delivered in {:?}", start.elapsed());

    // Deferred suppresses the NOTIFY (and the in-process wake-up). Let the worker
    // finish the pass that delivered 20 and go back to sleep first: a pass still
    // running would pick up the new row whatever the flush policy.
    std::thread::sleep(Duration::from_millis(1000));
    outbox::transaction_with(&mut other, FlushPolicy::Deferred, |c| write(c, 21)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(delivered(), vec![20], "Deferred: nobody woken");
    handle.shutdown();
}

fn shutdown_and_recovery<C: OutboxConnection + R2D2Connection>(
    p: Pool<ConnectionManager<C>>,
    name: &str,
    kill: impl Fn(),
) {
    DELIVERED.lock().unwrap().clear();
    let handle = Worker::builder(p.clone()).poll_interval(Duration::from_millis(50)).build().unwrap().spawn();
    write(&mut *p.get().unwrap(), 30).unwrap();
    assert!(wait_until(Duration::from_secs(5), || delivered().contains(&30)), "{name}");
    kill();
    write(&mut *p.get().unwrap(), 31).unwrap();
    assert!(wait_until(Duration::from_secs(15), || delivered().contains(&31)), "{name}: the worker recovered");
    let start = Instant::now();
    handle.shutdown();
    assert!(start.elapsed() < Duration::from_secs(5), "{name}: shutdown does not wait for the poll interval");
    assert_no_pending(&mut *p.get().unwrap());
}

#[test]
fn shutdown_is_graceful() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 4);
        dispatch!(&pool, |p| shutdown_and_recovery(p.clone(), db.name(), || ()));
    }
}

#[test]
fn postgres_workers_survive_terminated_connections() {
    let _g = serial();
    let Some(db) = TestDb::postgres() else { return };
    let _ = pool(&db, 1); // migrate
                          // Tag this test's sessions so only they are killed (other tests share the server).
    let app = format!("outbox_kill_{}", std::process::id());
    let url = format!("{}&application_name={app}", db.url());
    let pool = Pool::builder().max_size(4).build(ConnectionManager::<diesel::PgConnection>::new(url)).unwrap();
    shutdown_and_recovery(pool, "postgres", || {
        use diesel::RunQueryDsl;
        let killed = diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"
        ))
        .execute(&mut db.pg_connection())
        .unwrap();
        assert!(killed > 0, "killed the worker's sessions");
    });
}
