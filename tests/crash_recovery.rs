//! A worker process killed with SIGKILL in the middle of a receiver loses
//! nothing: once its lease expires, another worker delivers its shards.
//!
//! The test re-executes its own binary as the child worker: it has its own
//! `main` (`harness = false` in Cargo.toml), which takes the child role when
//! `OUTBOX_CRASH_CHILD` is set and runs the test otherwise.

#[macro_use]
mod drain_support;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{PgConnection, SqliteConnection};
use outbox::drain::{shard_states, Clock, Drainer};
use outbox::testing::{assert_no_pending, insert_raw_rows, region_row, TestDb};
use outbox::{Delivery, ReceiverError, Worker};

use drain_support::{pool, serial, wait_until};

const CHILD_ENV: &str = "OUTBOX_CRASH_CHILD";

scope!(SHARD, 0);
category!(HANGS_IN_CHILD, 30, SHARD);
region_receiver!(30, receive);

static DELIVERED: Mutex<Vec<(i64, u32)>> = Mutex::new(Vec::new());

fn receive(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        // The child: say we are inside the receiver, then hang until killed.
        let marker = spec.lines().nth(2).expect("marker path");
        std::fs::write(marker, b"in receiver").expect("write marker");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let m = cx.message();
    DELIVERED.lock().unwrap().push((m.object_identifier, m.coalesced));
    Ok(())
}

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(spec) => crash_child(&spec),
        Err(_) => {
            worker_killed_mid_receiver_loses_nothing_and_another_worker_delivers_after_the_lease();
            println!(
                "test worker_killed_mid_receiver_loses_nothing_and_another_worker_delivers_after_the_lease ... ok"
            );
        }
    }
}

/// The child role: drain with a long lease; the receiver hangs.
fn crash_child(spec: &str) {
    let mut lines = spec.lines();
    let (backend, url) = (lines.next().unwrap(), lines.next().unwrap());
    let lease = Duration::from_secs(600);
    match backend {
        "sqlite" => {
            let pool = Pool::builder()
                .max_size(2)
                .connection_customizer(Box::new(outbox::SqlitePragmas))
                .build(ConnectionManager::<SqliteConnection>::new(url))
                .unwrap();
            let _ = Worker::builder(pool).lease(lease).build().unwrap().run_until_idle();
        }
        _ => {
            let pool = Pool::builder().max_size(2).build(ConnectionManager::<PgConnection>::new(url)).unwrap();
            let _ = Worker::builder(pool).lease(lease).build().unwrap().run_until_idle();
        }
    }
    unreachable!("the receiver hangs until the parent kills this process");
}

fn worker_killed_mid_receiver_loses_nothing_and_another_worker_delivers_after_the_lease() {
    let _g = serial();
    for db in TestDb::all() {
        let name = db.name();
        DELIVERED.lock().unwrap().clear();
        let pool = pool(&db, 2);
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        macro_rules! with_conn {
            (|$c:ident| $body:expr) => {
                match &pool {
                    drain_support::AnyPool::Sqlite(p) => {
                        let $c = &mut *p.get().unwrap();
                        $body
                    }
                    drain_support::AnyPool::Pg(p) => {
                        let $c = &mut *p.get().unwrap();
                        $body
                    }
                }
            };
        }
        with_conn!(|c| insert_raw_rows(
            c,
            &[
                region_row(0, 1, 30, 1, None),
                region_row(0, 1, 30, 1, None),
                region_row(0, 1, 30, 2, None),
                region_row(0, 2, 30, 3, None)
            ]
        )
        .unwrap());

        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{name}\n{}\n{}", db.url(), marker.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(60), || marker.exists()), "{name}: child reached its receiver");
        child.kill().unwrap(); // SIGKILL: no cleanup, the lease stays
        child.wait().unwrap();

        // Before the lease expires nobody else may take the shards.
        let now = Drainer::builder().build().unwrap();
        let report = with_conn!(|c| now.drain_until_idle(c).unwrap());
        assert_eq!(report.shards, 0, "{name}: shards still leased by the dead worker");
        assert!(with_conn!(|c| shard_states(c).unwrap()).iter().all(|s| s.lease_owner.is_some()));

        // After it expires (a clock 601 s ahead), another worker delivers everything.
        let later = Drainer::builder()
            .clock(Clock::from_fn(|| chrono::Utc::now().naive_utc() + chrono::Duration::seconds(601)))
            .build()
            .unwrap();
        let report = with_conn!(|c| later.drain_until_idle(c).unwrap());
        assert_eq!(report.delivered, 3, "{name}");
        let mut delivered = DELIVERED.lock().unwrap().clone();
        delivered.sort();
        assert_eq!(delivered, vec![(1, 2), (2, 1), (3, 1)], "{name}: every group delivered, nothing lost");
        with_conn!(|c| assert_no_pending(c));
        assert!(with_conn!(|c| shard_states(c).unwrap()).is_empty());
    }
}
