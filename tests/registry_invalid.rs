//! An invalid registry stops `Worker::build` (and names every problem).

#[macro_use]
mod drain_support;

use outbox::drain::DrainError;
use outbox::testing::TestDb;
use outbox::Worker;

scope!(SHARD, 0);
category!(NOBODY_RECEIVES, 50, SHARD);
category!(TWICE_A, 51, SHARD);
category!(TWICE_B, 51, SHARD);
region_receiver!(51, ok);

fn ok(_cx: &mut outbox::Delivery<'_>) -> Result<(), outbox::ReceiverError> {
    Ok(())
}

#[test]
fn invalid_registry_stops_worker_build() {
    for db in TestDb::all() {
        let err = match drain_support::pool(&db, 1) {
            drain_support::AnyPool::Sqlite(p) => Worker::builder(p).build().err(),
            drain_support::AnyPool::Pg(p) => Worker::builder(p).build().err(),
        };
        let Some(DrainError::Registry(err)) = err else { panic!("{}: expected a registry error", db.name()) };
        let text = err.to_string();
        assert_eq!(err.problems.len(), 2, "{text}");
        assert!(text.contains("NOBODY_RECEIVES") && text.contains("has no receiver"), "{text}");
        assert!(text.contains("category id 51 is declared twice"), "{text}");
    }
}
