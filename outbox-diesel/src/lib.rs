//! Diesel backends of the `outbox` framework (SQLite and PostgreSQL): the outbox
//! tables and their migrations, the write path used by replicated models, the
//! drain engine and its workers. Users depend on the `outbox` facade.

mod backend;
pub mod backfill;
#[cfg(feature = "cli")]
pub mod cli;
pub mod drain;
mod error;
mod flush;
pub mod inspect;
mod migrate;
pub mod model;
mod rows;
pub mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wake;
pub mod worker;
pub mod write;

pub use backend::{Backend, DbConn, OutboxConnection};
pub use drain::{transaction_synchronous, DrainError, DrainReport, Drainer, SyncFlushError, Undelivered};
pub use error::{Error, Result};
pub use flush::{pending_shards, transaction, transaction_with, Committed, ShardKey};
pub use migrate::{migrate, POSTGRES_DOWN, POSTGRES_UP, SQLITE_DOWN, SQLITE_UP};
pub use model::{receive_control_model, receive_region_model, ControlReplication, OutboxModel, RegionReplication};
pub use rows::{pending_rows, StoredRow};
#[cfg(feature = "sqlite")]
pub use sqlite::{sqlite_pragmas, SqlitePragmas};
pub use worker::{Worker, WorkerBuilder, WorkerHandle};
pub use write::{write_control_message, write_region_message, OutboxRow};
