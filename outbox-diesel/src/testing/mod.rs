//! Helpers for testing code that uses outboxes (feature `testing`).

mod clock;
mod db;
mod faults;
mod rows;
mod runner;

pub use clock::ManualClock;
pub use db::{TestDb, POSTGRES_URL_ENV};
pub use faults::Faults;
pub use rows::{assert_no_pending, assert_pending, control_row, insert_raw_rows, pending, region_row};
pub use runner::{drain_rounds, outbox_runner, outbox_runner_with, RunnerError, DEFAULT_MAX_ROUNDS};
