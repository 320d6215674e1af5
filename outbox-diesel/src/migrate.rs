//! Creating the outbox tables.
//!
//! Two ways, pick one per database:
//! - call [`migrate`] at start-up: it applies the embedded migrations and records
//!   them in Diesel's `__diesel_schema_migrations` table, so calling it again is a no-op;
//! - or copy the SQL into your own Diesel migrations: [`SQLITE_UP`] / [`POSTGRES_UP`]
//!   (and the `*_DOWN` counterparts) hold exactly what [`migrate`] runs. Every
//!   statement uses `IF NOT EXISTS`, so mixing both ways is harmless.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::backend::{DbConn, OutboxConnection};
use crate::error::{Error, Result};

#[cfg(feature = "sqlite")]
const SQLITE: EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const POSTGRES: EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations/postgres");

/// The SQLite schema (every embedded migration, in order), for an application's own migration `up.sql`.
pub const SQLITE_UP: &str = concat!(
    include_str!("../migrations/sqlite/2026-12-01-000000_outbox_tables/up.sql"),
    include_str!("../migrations/sqlite/2026-12-02-000000_outbox_drain/up.sql")
);
/// The SQLite schema's `down.sql`.
pub const SQLITE_DOWN: &str = concat!(
    include_str!("../migrations/sqlite/2026-12-02-000000_outbox_drain/down.sql"),
    include_str!("../migrations/sqlite/2026-12-01-000000_outbox_tables/down.sql")
);
/// The PostgreSQL schema (every embedded migration, in order), for an application's own migration `up.sql`.
pub const POSTGRES_UP: &str = concat!(
    include_str!("../migrations/postgres/2026-12-01-000000_outbox_tables/up.sql"),
    include_str!("../migrations/postgres/2026-12-02-000000_outbox_drain/up.sql")
);
/// The PostgreSQL schema's `down.sql`.
pub const POSTGRES_DOWN: &str = concat!(
    include_str!("../migrations/postgres/2026-12-02-000000_outbox_drain/down.sql"),
    include_str!("../migrations/postgres/2026-12-01-000000_outbox_tables/down.sql")
);

/// Creates (or finishes creating) the outbox tables. Idempotent.
///
/// ```
/// # use diesel::{Connection, SqliteConnection};
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// outbox::migrate(&mut conn)?; // a no-op the second time
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Migration`] with the database's reason.
pub fn migrate<C: OutboxConnection>(conn: &mut C) -> Result<()> {
    let applied = match conn.db() {
        #[cfg(feature = "sqlite")]
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE).map(|v| v.len()),
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => c.run_pending_migrations(POSTGRES).map(|v| v.len()),
    }
    .map_err(|e| Error::Migration(e.to_string()))?;
    tracing::debug!(applied, "outbox migrations applied");
    Ok(())
}
