//! `outbox::testing::outbox_runner`: drains after a block, round by round, and
//! names the categories still writing when the round limit is hit.

#[macro_use]
mod drain_support;

use std::sync::atomic::{AtomicU32, Ordering};

use outbox::drain::Drainer;
use outbox::testing::{
    assert_no_pending, insert_raw_rows, outbox_runner, outbox_runner_with, region_row, Faults, RunnerError, TestDb,
};
use outbox::{Delivery, OutboxConnection, ReceiverError};

use drain_support::{pool, serial};

scope!(SHARD, 0);
category!(CHAIN, 60, SHARD);
category!(FOREVER, 61, SHARD);
region_receiver!(60, chain);
region_receiver!(61, forever);

static CHAIN_CALLS: AtomicU32 = AtomicU32::new(0);

fn write_from_receiver(cx: &mut Delivery<'_>, category: i32) -> Result<(), ReceiverError> {
    let m = cx.message().clone();
    let row = region_row(0, m.shard_identifier, category, m.object_identifier + 1, None);
    match outbox::DbConn::from_any(cx.connection_any()).expect("connection") {
        outbox::DbConn::Sqlite(c) => insert_raw_rows(c, &[row]),
        outbox::DbConn::Pg(c) => insert_raw_rows(c, &[row]),
    }?;
    Ok(())
}

/// Writes a follow-up row three times, then stops.
fn chain(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    if CHAIN_CALLS.fetch_add(1, Ordering::SeqCst) < 3 {
        write_from_receiver(cx, 60)?;
    }
    Ok(())
}

/// Always writes a follow-up row.
fn forever(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    write_from_receiver(cx, 61)
}

fn scenario<C: OutboxConnection>(c: &mut C, name: &str) {
    CHAIN_CALLS.store(0, Ordering::SeqCst);
    let faults = Faults::new();
    let drainer = Drainer::builder().resource(faults.clone()).build().unwrap();
    let value = outbox_runner(c, &drainer, |c| {
        insert_raw_rows(c, &[region_row(0, 1, 60, 100, None)]).unwrap();
        "done"
    })
    .unwrap();
    assert_eq!(value, "done");
    assert_eq!(CHAIN_CALLS.load(Ordering::SeqCst), 4, "{name}: follow-ups delivered in later rounds");
    assert_no_pending(c);

    let err = outbox_runner_with(c, &drainer, 5, |c| insert_raw_rows(c, &[region_row(0, 2, 61, 0, None)])).unwrap_err();
    match &err {
        RunnerError::RecursionLimit { rounds, categories } => {
            assert_eq!(*rounds, 5);
            assert_eq!(categories, &vec!["FOREVER (61)".to_string()], "{name}");
        }
        other => panic!("{name}: {other}"),
    }
    assert!(err.to_string().contains("FOREVER (61)"), "{err}");
    // Clean up the runaway chain with a fault so it stops writing.
    faults.fail(61, None);
    let err = outbox_runner(c, &drainer, |_| ()).unwrap_err();
    assert!(matches!(err, RunnerError::Failed { .. }), "{name}: a failing receiver is reported: {err}");
    assert!(err.to_string().contains("injected fault"), "{err}");
}

#[test]
fn outbox_runner_drains_in_rounds_and_reports_recursion() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 1);
        match &pool {
            drain_support::AnyPool::Sqlite(p) => scenario(&mut *p.get().unwrap(), db.name()),
            drain_support::AnyPool::Pg(p) => scenario(&mut *p.get().unwrap(), db.name()),
        }
    }
}
