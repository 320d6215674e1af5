//! # outbox
//!
//! Sentry-style transactional outboxes for Diesel. Annotate a model and every
//! save, update or delete writes an outbox row in the same transaction; workers
//! drain those rows afterwards, in order per shard, coalescing repeated changes,
//! and call your receivers until they succeed.
//!
//! Start with the README's quickstart (`cargo run --example quickstart`).
//!
//! ```
//! use outbox::prelude::*;
//!
//! #[outbox_scope]
//! pub enum Scope {
//!     #[scope(id = 0)]
//!     Organization,
//!     #[scope(id = 3)]
//!     AuditLog,
//! }
//!
//! #[outbox_category]
//! pub enum Category {
//!     #[category(id = 2, scope = Scope::Organization, region = on_team_update)]
//!     TeamUpdate,
//!     #[category(id = 5, scope = Scope::AuditLog, discard)]
//!     AuditLogEvent,
//!     #[category(id = 4, retired)]
//!     OrganizationMemberTeamUpdate,
//! }
//!
//! fn on_team_update(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
//!     let _team_id = cx.message().object_identifier;
//!     Ok(())
//! }
//!
//! outbox::registry().validate().expect("every live category has a receiver");
//! ```

pub use outbox_core::{
    registry, Backoff, CategoryInfo, ControlDelivery, Delivery, Direction, FlushPolicy, Message, OutboxCategory,
    OutboxScope, PoisonPolicy, ReceiverError, Registry, RegistryError, RegistryProblem, Resources, ScopeInfo,
};
pub use outbox_derive::{outbox_category, outbox_scope, ReplicatedControlModel, ReplicatedRegionModel};
pub use outbox_diesel::{
    migrate, pending_rows, pending_shards, transaction, transaction_with, write_control_message, write_region_message,
    Backend, Committed, ControlReplication, DbConn, Error, OutboxConnection, OutboxModel, OutboxRow, RegionReplication,
    Result, ShardKey, StoredRow,
};

#[cfg(feature = "sqlite")]
pub use outbox_diesel::{sqlite_pragmas, SqlitePragmas};

/// The drain engine: claims, delivery, quarantine, synchronous flushes.
pub use outbox_diesel::drain;
/// Background workers draining a database through an r2d2 pool.
pub use outbox_diesel::worker;
pub use outbox_diesel::{
    transaction_synchronous, DrainError, DrainReport, Drainer, SyncFlushError, Undelivered, Worker, WorkerBuilder,
    WorkerHandle,
};

/// Test databases, draining runners and assertions (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing {
    pub use outbox_diesel::testing::*;
}

/// The inspector: what waits in the outboxes and why, as data (`outbox status` prints it).
pub mod inspect {
    pub use outbox_diesel::inspect::*;
}

/// Backfills: outbox rows for rows that existed before their model replicated.
pub mod backfill {
    pub use outbox_diesel::backfill::*;
}

/// The `outbox` command line as a library (feature `cli`), to embed in an application's own binary.
#[cfg(feature = "cli")]
pub mod cli {
    pub use outbox_diesel::cli::*;
}

/// Diesel `table!` definitions of the outbox tables, for your own queries.
pub use outbox_diesel::schema;

/// The SQL of the outbox tables, for applications that keep their own Diesel migrations.
pub mod migrations {
    pub use outbox_diesel::{POSTGRES_DOWN, POSTGRES_UP, SQLITE_DOWN, SQLITE_UP};
}

/// Everything a model or receiver file needs: `use outbox::prelude::*;`.
pub mod prelude {
    pub use crate::{
        outbox_category, outbox_scope, ControlDelivery, ControlReplication, Delivery, OutboxCategory, OutboxModel,
        OutboxScope, ReceiverError, RegionReplication, ReplicatedControlModel, ReplicatedRegionModel,
    };
}

/// Runs one expression per enabled backend on a [`DbConn`], with the given name
/// bound to the concrete connection (`&mut SqliteConnection` or
/// `&mut PgConnection`): backend-generic Diesel code without spelling out
/// Diesel's generic bounds. Each arm is type-checked against its own backend.
///
/// ```
/// use diesel::prelude::*;
/// use outbox::OutboxConnection;
/// use outbox::schema::region_outbox;
///
/// fn depth<C: OutboxConnection>(conn: &mut C) -> QueryResult<i64> {
///     outbox::with_db!(conn.db(), |c| region_outbox::table.count().get_result(c))
/// }
///
/// let mut conn = diesel::SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// assert_eq!(depth(&mut conn)?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! with_db {
    ($db:expr, |$c:ident| $body:expr) => {
        $crate::__private::with_db!($db, |$c| $body)
    };
}

/// The user guide (`docs/guide.md`): one section per task, every example compiled.
#[doc = include_str!("../docs/guide.md")]
pub mod guide {}

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use diesel;
    pub use outbox_core::__private::inventory;
    pub use outbox_core::{
        find_category, find_scope, CategoryInfo, CategoryRegistration, Direction, IsControlReceiver, IsRegionReceiver,
        OutboxCategory, OutboxScope, PoisonPolicy, Receiver, ReceiverRegistration, ScopeInfo, ScopeRegistration,
    };
    pub use outbox_core::{ControlDelivery, Delivery, ReceiverError};
    pub use outbox_diesel::__with_db as with_db;
    pub use outbox_diesel::model::assert;
    pub use outbox_diesel::model::{receive_control_model, receive_region_model};
    pub use outbox_diesel::write::{region_names, to_payload, ChangeWithOutbox, Identifier, OutboxRow};
    pub use outbox_diesel::{DbConn, Error, OutboxModel, Result};
    pub use serde_json::Value;
    pub use std::assert;
    pub use std::convert::{From, Into, TryFrom};
    pub use std::module_path;
    pub use std::option::Option;
    pub use std::option::Option::{None, Some};
    pub use std::result::Result::{Err, Ok};
    pub use std::string::String;
    pub use std::stringify;
    pub use std::vec::Vec;
}
