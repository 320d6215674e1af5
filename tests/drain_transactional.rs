//! Transactional categories: the receiver runs inside the transaction that
//! deletes its group, so an error after its write rolls both back, and a
//! success commits both: delivered once. On both backends.

#[macro_use]
mod drain_support;

use std::time::Duration;

use diesel::prelude::*;
use outbox::drain::Drainer;
use outbox::testing::{assert_no_pending, assert_pending, insert_raw_rows, region_row, Faults, ManualClock, TestDb};
use outbox::{Delivery, Direction, OutboxConnection, ReceiverError};

use drain_support::{pool, serial};

scope!(SHARD, 0);
category!(LEDGER, 20, SHARD, transactional: true);
category!(PLAIN, 21, SHARD);
region_receiver!(20, write_effect);
region_receiver!(21, write_effect);

fn exec_any(conn: &mut dyn std::any::Any, sql: &str) -> QueryResult<usize> {
    match outbox::DbConn::from_any(conn).expect("outbox connection") {
        outbox::DbConn::Sqlite(c) => diesel::sql_query(sql).execute(c),
        outbox::DbConn::Pg(c) => diesel::sql_query(sql).execute(c),
    }
}

/// Writes one effect row per delivery into the outbox's own database.
fn write_effect(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let m = cx.message().clone();
    exec_any(
        cx.connection_any(),
        &format!("INSERT INTO effects (category, object_identifier) VALUES ({}, {})", m.category, m.object_identifier),
    )?;
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn effects<C: OutboxConnection>(c: &mut C, category: i32) -> i64 {
    let q = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM effects WHERE category = {category}");
    let rows: Vec<Count> = match c.db() {
        outbox::DbConn::Sqlite(c) => diesel::sql_query(q).load(c),
        outbox::DbConn::Pg(c) => diesel::sql_query(q).load(c),
    }
    .unwrap();
    rows[0].n
}

fn scenario<C: OutboxConnection>(c: &mut C, name: &str) {
    match c.db() {
        outbox::DbConn::Sqlite(c) => diesel::sql_query(
            "CREATE TABLE IF NOT EXISTS effects (category INTEGER NOT NULL, object_identifier BIGINT NOT NULL)",
        )
        .execute(c),
        outbox::DbConn::Pg(c) => diesel::sql_query(
            "CREATE TABLE IF NOT EXISTS effects (category INTEGER NOT NULL, object_identifier BIGINT NOT NULL)",
        )
        .execute(c),
    }
    .unwrap();
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = Drainer::builder().clock(clock.clock()).resource(faults.clone()).build().unwrap();
    insert_raw_rows(c, &[region_row(0, 1, 20, 1, None), region_row(0, 1, 20, 1, None), region_row(0, 2, 21, 1, None)])
        .unwrap();

    // The receivers write, then the delivery fails.
    faults.fail_after(20, Some(1));
    faults.fail_after(21, Some(1));
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.failures.len(), 2, "{name}");
    assert_eq!(effects(c, 20), 0, "{name}: transactional: the receiver's write rolled back with the failure");
    assert_pending(c, Direction::Region, 20, 2);
    assert_eq!(effects(c, 21), 1, "{name}: non-transactional: the effect happened (at-least-once)");
    assert_pending(c, Direction::Region, 21, 1);

    clock.advance(Duration::from_secs(2));
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.delivered, 2, "{name}");
    assert_eq!(effects(c, 20), 1, "{name}: transactional: delivered exactly once");
    assert_eq!(effects(c, 21), 2, "{name}: non-transactional: delivered again after the failure");
    assert_no_pending(c);
    // Nothing left to redeliver.
    assert_eq!(drainer.drain_until_idle(c).unwrap().delivered, 0);
    assert_eq!(effects(c, 20), 1);
}

#[test]
fn transactional_delivery_rolls_back_with_its_receiver_and_commits_once() {
    let _g = serial();
    for db in TestDb::all() {
        let pool = pool(&db, 2);
        match &pool {
            drain_support::AnyPool::Sqlite(p) => scenario(&mut *p.get().unwrap(), db.name()),
            drain_support::AnyPool::Pg(p) => scenario(&mut *p.get().unwrap(), db.name()),
        }
    }
}
