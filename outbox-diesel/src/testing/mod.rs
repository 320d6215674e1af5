//! Helpers for testing code that uses outboxes (feature `testing`).

mod db;

pub use db::{TestDb, POSTGRES_URL_ENV};
