//! Failures: exact backoff with an injected clock, quarantine after
//! max_attempts, skip and block, retry and discard from quarantine, panics,
//! deadlines, discard categories, unknown categories; on both backends.

#[macro_use]
mod drain_support;

use std::sync::Mutex;
use std::time::Duration;

use outbox::drain::{discard_quarantined, list_quarantined, retry_quarantined, shard_states, Drainer};
use outbox::testing::{
    assert_no_pending, assert_pending, control_row, insert_raw_rows, pending, region_row, Faults, ManualClock, TestDb,
};
use outbox::{Backoff, ControlDelivery, Delivery, Direction, OutboxConnection, PoisonPolicy, ReceiverError};

use drain_support::{pool, serial};

scope!(SHARD, 0);
category!(FLAKY, 10, SHARD, max_attempts: Some(3));
category!(SKIPPY, 11, SHARD, max_attempts: Some(2), on_poison: PoisonPolicy::Skip);
category!(DISCARDED, 12, SHARD, discard: true);
category!(NEXT, 13, SHARD);
category!(PANICS, 14, SHARD, max_attempts: Some(100));
category!(SLOW, 15, SHARD, max_attempts: Some(100));
category!(TO_REGIONS, 16, SHARD);
region_receiver!(10, record);
region_receiver!(11, record);
region_receiver!(13, record);
region_receiver!(14, panics);
region_receiver!(15, slow);
control_receiver!(16, record_control);

static CALLS: Mutex<Vec<(i32, i64, String)>> = Mutex::new(Vec::new());

fn record(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let m = cx.message();
    CALLS.lock().unwrap().push((m.category, m.object_identifier, String::new()));
    Ok(())
}

fn record_control(cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
    let region = cx.region_name().to_string();
    let m = cx.message();
    CALLS.lock().unwrap().push((m.category, m.object_identifier, region));
    Ok(())
}

fn panics(_cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    panic!("receiver bug");
}

fn slow(_cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

fn calls() -> Vec<(i32, i64)> {
    std::mem::take(&mut *CALLS.lock().unwrap()).into_iter().map(|(c, o, _)| (c, o)).collect()
}

fn drainer(clock: &ManualClock, faults: &Faults) -> Drainer {
    Drainer::builder()
        .clock(clock.clock())
        .resource(faults.clone())
        .backoff(Backoff { base: Duration::from_secs(2), cap: Duration::from_secs(10) })
        .max_attempts(50)
        .lease(Duration::from_secs(30))
        .deadline(Duration::from_millis(150))
        .build()
        .unwrap()
}

fn each_backend(test: impl Fn(&mut dyn FnMut(&mut dyn FnMut(Conn<'_>)), &str)) {
    let _g = serial();
    for db in TestDb::all() {
        CALLS.lock().unwrap().clear();
        let pool = pool(&db, 2);
        match &pool {
            drain_support::AnyPool::Sqlite(p) => {
                let mut c = p.get().unwrap();
                test(&mut |f| f(Conn::Sqlite(&mut c)), db.name())
            }
            drain_support::AnyPool::Pg(p) => {
                let mut c = p.get().unwrap();
                test(&mut |f| f(Conn::Pg(&mut c)), db.name())
            }
        }
    }
}

enum Conn<'a> {
    Sqlite(&'a mut diesel::SqliteConnection),
    Pg(&'a mut diesel::PgConnection),
}

/// Runs generic code on the concrete connection.
macro_rules! on {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Pg($c) => $body,
        }
    };
}

fn backoff_schedule<C: OutboxConnection>(c: &mut C, name: &str) {
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = drainer(&clock, &faults);
    insert_raw_rows(c, &[region_row(0, 1, 13, 1, None)]).unwrap();
    faults.fail(13, None);
    let expected = [2u64, 4, 8, 10, 10, 10];
    for (n, secs) in expected.iter().enumerate() {
        let report = drainer.drain_until_idle(c).unwrap();
        assert_eq!(report.failures.len(), 1, "{name}: attempt {}", n + 1);
        assert_eq!(report.failures[0].attempts, n as u32 + 1);
        let state = &shard_states(c).unwrap()[0];
        assert_eq!(state.attempts, n as i32 + 1, "{name}");
        assert_eq!(state.lease_owner, None, "{name}: lease released after the failure");
        assert_eq!(
            state.next_attempt_at - clock.now(),
            chrono::Duration::seconds(*secs as i64),
            "{name}: backoff after failure {}",
            n + 1
        );
        assert!(state.last_error.as_deref().unwrap().contains("injected fault"));
        // Not retried a millisecond early ...
        clock.advance(Duration::from_secs(*secs) - Duration::from_millis(1));
        assert_eq!(drainer.drain_until_idle(c).unwrap().shards, 0, "{name}: shard backing off");
        clock.advance(Duration::from_millis(1));
    }
    // ... and on time; success clears the state.
    faults.clear(13);
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.delivered, 1, "{name}");
    assert_eq!(calls(), vec![(13, 1)]);
    assert!(shard_states(c).unwrap().is_empty(), "{name}: state row gone after success");
    assert_no_pending(c);
}

#[test]
fn backoff_follows_the_formula_exactly_with_an_injected_clock() {
    each_backend(|run, name| run(&mut |conn| on!(conn, |c| backoff_schedule(c, name))));
}

fn quarantine_blocks<C: OutboxConnection>(c: &mut C, name: &str) {
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = drainer(&clock, &faults);
    insert_raw_rows(c, &[region_row(0, 2, 10, 1, None), region_row(0, 2, 10, 1, None), region_row(0, 2, 13, 2, None)])
        .unwrap();
    faults.fail(10, None);
    for attempt in 1..=3u32 {
        let report = drainer.drain_until_idle(c).unwrap();
        assert_eq!(report.failures[0].attempts, attempt, "{name}");
        assert_eq!(report.failures[0].quarantined, attempt == 3, "{name}: quarantined after max_attempts = 3");
        clock.advance(Duration::from_secs(60));
    }
    let q = list_quarantined(c).unwrap();
    assert_eq!(q.len(), 1, "{name}");
    assert!(q[0].blocking, "{name}: on_poison = block by default");
    assert_eq!((q[0].attempts, q[0].row_count, q[0].category), (3, 2, 10));
    assert!(q[0].last_error.contains("injected fault"));
    assert!(q[0].first_row_id < q[0].last_row_id);
    // The group left the outbox; the rest of the shard waits behind it.
    assert_pending(c, Direction::Region, 10, 0);
    assert_pending(c, Direction::Region, 13, 1);
    assert_eq!(drainer.drain_until_idle(c).unwrap().shards, 0, "{name}: blocked shard not claimed");
    assert!(calls().is_empty());

    // Other shards go on meanwhile.
    insert_raw_rows(c, &[region_row(0, 3, 13, 3, None)]).unwrap();
    assert_eq!(drainer.drain_until_idle(c).unwrap().delivered, 1, "{name}");
    assert_eq!(calls(), vec![(13, 3)]);

    // Retry: the group goes back in its place and is delivered before the rest of the shard.
    faults.clear(10);
    assert!(retry_quarantined(c, q[0].id).unwrap().is_some());
    assert!(retry_quarantined(c, q[0].id).unwrap().is_none(), "retried once");
    assert!(list_quarantined(c).unwrap().is_empty());
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.delivered, 2, "{name}");
    assert_eq!(calls(), vec![(10, 1), (13, 2)], "{name}: retried group first, then the shard's later rows");
    assert_no_pending(c);
}

#[test]
fn quarantine_after_max_attempts_blocks_the_shard_until_retried() {
    each_backend(|run, name| run(&mut |conn| on!(conn, |c| quarantine_blocks(c, name))));
}

fn quarantine_skips<C: OutboxConnection>(c: &mut C, name: &str) {
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = drainer(&clock, &faults);
    insert_raw_rows(c, &[region_row(0, 4, 11, 1, None), region_row(0, 4, 13, 2, None)]).unwrap();
    faults.fail(11, None);
    let first = drainer.drain_until_idle(c).unwrap();
    assert_eq!((first.failures.len(), first.delivered), (1, 0), "{name}: later group waits while retrying");
    clock.advance(Duration::from_secs(60));
    let second = drainer.drain_until_idle(c).unwrap();
    assert_eq!(second.quarantined, 1, "{name}");
    assert_eq!(second.delivered, 1, "{name}: on_poison = skip lets the shard go on in the same pass");
    assert_eq!(calls(), vec![(13, 2)]);
    let q = list_quarantined(c).unwrap();
    assert!(!q[0].blocking, "{name}");
    assert!(discard_quarantined(c, q[0].id).unwrap().is_some());
    assert!(list_quarantined(c).unwrap().is_empty());
    assert_no_pending(c);
}

#[test]
fn quarantine_with_skip_lets_the_shard_continue() {
    each_backend(|run, name| run(&mut |conn| on!(conn, |c| quarantine_skips(c, name))));
}

fn discard_and_unknown<C: OutboxConnection>(c: &mut C, name: &str) {
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = drainer(&clock, &faults);
    insert_raw_rows(
        c,
        &[
            region_row(0, 5, 12, 1, None),
            region_row(0, 5, 99, 2, None),
            region_row(0, 5, 12, 1, None),
            region_row(0, 5, 13, 3, None),
            region_row(0, 6, 99, 4, None),
            region_row(0, 6, 12, 5, None),
        ],
    )
    .unwrap();
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.discarded, 3, "{name}: discard rows deleted unprocessed");
    assert_eq!(calls(), vec![(13, 3)], "{name}: unknown rows do not block their shard");
    let left = pending(c, None);
    assert_eq!(left.len(), 2, "{name}: unknown rows untouched");
    assert!(left.iter().all(|r| r.category == 99));
    assert_eq!(report.unhandled.len(), 1, "{name}");
    assert_eq!((report.unhandled[0].category, report.unhandled[0].rows), (99, 2));
    assert!(report.unhandled[0].reason.contains("unknown"));
    // Idle: nothing claimable is left, and another pass does not touch them.
    assert_eq!(drainer.drain_until_idle(c).unwrap().shards, 0);
    assert_eq!(pending(c, None).len(), 2);
}

#[test]
fn discard_categories_are_deleted_and_unknown_categories_left_untouched() {
    each_backend(|run, name| run(&mut |conn| on!(conn, |c| discard_and_unknown(c, name))));
}

fn panic_and_deadline<C: OutboxConnection>(c: &mut C, name: &str) {
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = drainer(&clock, &faults);
    insert_raw_rows(c, &[region_row(0, 7, 14, 1, None), region_row(0, 8, 15, 2, None), region_row(0, 9, 13, 3, None)])
        .unwrap();
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!(report.delivered, 1, "{name}: other shards go on");
    let mut errors: Vec<String> = report.failures.iter().map(|f| f.error.clone()).collect();
    errors.sort();
    assert!(errors[0].contains("receiver panicked: receiver bug"), "{name}: {errors:?}");
    assert!(errors[1].contains("deadline"), "{name}: {errors:?}");
    assert_pending(c, Direction::Region, 14, 1);
    assert_pending(c, Direction::Region, 15, 1);
    assert_eq!(shard_states(c).unwrap().len(), 2);
}

#[test]
fn panics_and_deadline_overruns_count_as_failures() {
    each_backend(|run, name| run(&mut |conn| on!(conn, |c| panic_and_deadline(c, name))));
}

fn control_rows<C: OutboxConnection>(c: &mut C, name: &str) {
    let (clock, faults) = (ManualClock::new(), Faults::new());
    let drainer = drainer(&clock, &faults);
    insert_raw_rows(
        c,
        &[control_row(0, 1, 16, 7, "us"), control_row(0, 1, 16, 7, "eu"), control_row(0, 1, 16, 7, "us")],
    )
    .unwrap();
    let report = drainer.drain_until_idle(c).unwrap();
    assert_eq!((report.shards, report.delivered, report.coalesced), (2, 2, 1), "{name}: one shard per region");
    let mut regions: Vec<String> = std::mem::take(&mut *CALLS.lock().unwrap()).into_iter().map(|c| c.2).collect();
    regions.sort();
    assert_eq!(regions, vec!["eu", "us"]);
    assert_no_pending(c);
}

#[test]
fn control_rows_are_sharded_and_delivered_per_region() {
    each_backend(|run, name| run(&mut |conn| on!(conn, |c| control_rows(c, name))));
}
