//! The inspector: what is waiting in the outboxes and why, as data.
//!
//! Every call reads the outbox tables and returns plain structs (serializable
//! with serde, numbers as numbers) that the `outbox` command line prints as
//! tables or JSON, and that applications can show in their own tools.
//!
//! The tables store ids only. A report names scopes and categories once it is
//! given a registry ([`StatusReport::with_registry`]): an application passes its
//! own (`outbox::registry()`), which also tells which stored category ids this
//! version of the application does not know (rows written by a newer version).
//!
//! ```
//! # use diesel::{Connection, SqliteConnection};
//! use outbox_diesel::inspect::StatusReport;
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! outbox_diesel::migrate(&mut conn)?;
//! let report = StatusReport::collect(&mut conn)?.with_registry(outbox_core::registry());
//! assert_eq!(report.total_pending, 0);
//! assert!(report.quarantined.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What to look at when "data is not replicating" (see the guide): `pending`
//! growing with an old `oldest_age_seconds` means nobody drains (workers down) or
//! a shard is stuck; `backoff` lists failing shards with their last error;
//! `quarantined` lists groups that failed too often (blocking ones hold their
//! shard until retried or discarded); `unknown_categories` lists rows no
//! receiver of this version will ever take.

mod names;
mod quarantine;
mod query;
mod report;

pub use quarantine::{quarantine_discard, quarantine_list, quarantine_retry, RetriedGroup};
pub use query::{check_tables, object_rows, shard_messages, top_shards, REQUIRED_TABLES};
pub use report::{
    MessageRow, ObjectReport, PendingGroup, QuarantinedGroup, ShardBackoff, ShardDepth, StatusReport, UnknownCategory,
    UnknownReason,
};

pub use names::{resolve_category, resolve_scope};

use crate::backend::Backend;

/// The migration that creates the outbox tables (both backends).
pub const OUTBOX_MIGRATION: &str = "2026-12-01-000000_outbox_tables";

/// Why an inspector call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The database has none (or only some) of the outbox tables.
    #[error(
        "this {backend} database has no outbox tables (missing: {missing}); create them by calling \
         `outbox::migrate(&mut conn)` at start-up, or apply the migration `{OUTBOX_MIGRATION}` \
         (`outbox::migrations::{constant}`) with your own Diesel migrations"
    )]
    MissingTables {
        /// Which backend.
        backend: &'static str,
        /// The missing tables, comma separated.
        missing: String,
        /// The constant holding the SQL (`SQLITE_UP` or `POSTGRES_UP`).
        constant: &'static str,
    },
    /// A scope given by name or id that the registry does not declare.
    #[error("unknown scope `{given}`: {hint}")]
    UnknownScope {
        /// What was given.
        given: String,
        /// What is known instead.
        hint: String,
    },
    /// A category given by name or id that the registry does not declare.
    #[error("unknown category `{given}`: {hint}")]
    UnknownCategory {
        /// What was given.
        given: String,
        /// What is known instead.
        hint: String,
    },
    /// No quarantined group has this id.
    #[error("no quarantined group has id {0}; `outbox quarantine list` shows the ids")]
    NoSuchQuarantine(i64),
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// An outbox write (retrying a quarantined group) failed.
    #[error(transparent)]
    Outbox(#[from] crate::Error),
    /// The drain engine's quarantine call failed.
    #[error(transparent)]
    Drain(#[from] crate::drain::DrainError),
}

pub(crate) fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// Timestamps in JSON: ISO 8601 in UTC, e.g. `2026-12-03T18:47:07.123456Z`.
pub(crate) mod ts {
    use chrono::NaiveDateTime;
    use serde::Serializer;

    pub fn format(t: &NaiveDateTime) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub mod option {
        use chrono::NaiveDateTime;
        use serde::Serializer;

        pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }
    }
}

/// Directions in JSON: `"region"` or `"control"`.
pub(crate) fn direction<S: serde::Serializer>(d: &outbox_core::Direction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// Seconds from `then` to `now` (negative when `then` is in the future).
pub(crate) fn seconds_between(then: chrono::NaiveDateTime, now: chrono::NaiveDateTime) -> f64 {
    (now - then).num_milliseconds() as f64 / 1000.0
}
