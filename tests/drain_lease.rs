//! A worker whose lease was taken over while its receiver ran keeps its hands
//! off the shard: completion deletes nothing there, reports the lost lease, and
//! the rows are delivered again by whoever holds the shard (at-least-once). On
//! both backends.

#[macro_use]
mod drain_support;

use std::sync::Mutex;

use diesel::prelude::*;
use outbox::drain::Drainer;
use outbox::testing::{insert_raw_rows, pending, region_row, TestDb};
use outbox::{Delivery, OutboxConnection, ReceiverError};

use drain_support::serial;

scope!(SHARD, 0);
category!(STOLEN, 40, SHARD);
region_receiver!(40, deliver);

/// Objects delivered, in order.
static CALLS: Mutex<Vec<i64>> = Mutex::new(Vec::new());

fn exec_any(conn: &mut dyn std::any::Any, sql: &str) -> QueryResult<usize> {
    match outbox::DbConn::from_any(conn).expect("outbox connection") {
        outbox::DbConn::Sqlite(c) => diesel::sql_query(sql).execute(c),
        outbox::DbConn::Pg(c) => diesel::sql_query(sql).execute(c),
    }
}

/// The first delivery plays "another worker took the expired lease meanwhile".
fn deliver(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let first = {
        let mut calls = CALLS.lock().unwrap();
        calls.push(cx.message().object_identifier);
        calls.len() == 1
    };
    if first {
        exec_any(cx.connection_any(), "UPDATE outbox_shard SET lease_owner = 'thief'")?;
    }
    Ok(())
}

fn scenario<C: OutboxConnection>(c: &mut C, name: &str) {
    CALLS.lock().unwrap().clear();
    outbox::migrate(c).unwrap();
    insert_raw_rows(c, &[region_row(0, 7, 40, 1, None), region_row(0, 7, 40, 2, None)]).unwrap();
    let drainer = Drainer::builder().build().unwrap();

    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.leases_lost, 1, "{name}: the stolen lease is reported");
    assert_eq!(report.rows_deleted, 0, "{name}: nothing deleted under the new holder");
    assert_eq!(pending(c, None).len(), 2, "{name}: both rows kept");
    assert_eq!(*CALLS.lock().unwrap(), vec![1, 2], "{name}: delivered once so far");

    // The thief goes away (its lease expires, or it completes without deleting):
    // the shard is free again and its rows are delivered again.
    match c.db() {
        outbox::DbConn::Sqlite(c) => diesel::sql_query("DELETE FROM outbox_shard").execute(c),
        outbox::DbConn::Pg(c) => diesel::sql_query("DELETE FROM outbox_shard").execute(c),
    }
    .unwrap();
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!((report.delivered, report.rows_deleted, report.leases_lost), (2, 2, 0), "{name}: redelivered");
    assert!(pending(c, None).is_empty(), "{name}: nothing left");
    assert_eq!(*CALLS.lock().unwrap(), vec![1, 2, 1, 2], "{name}: at-least-once, in order");
}

#[test]
fn a_lease_lost_during_delivery_keeps_the_rows_for_the_new_holder() {
    let _g = serial();
    for db in TestDb::all() {
        match db.backend() {
            outbox::Backend::Sqlite => scenario(&mut db.sqlite_connection(), db.name()),
            outbox::Backend::Postgres => scenario(&mut db.pg_connection(), db.name()),
        }
    }
}
