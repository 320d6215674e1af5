//! SQLite settings for concurrent use: WAL so readers don't block the writer, a
//! busy timeout so concurrent writers wait for the lock instead of failing.

use diesel::connection::SimpleConnection;
use diesel::SqliteConnection;

/// Applies outbox's recommended pragmas to a SQLite connection: WAL journal,
/// `synchronous = NORMAL`, a 5 s busy timeout and foreign keys on.
///
/// # Errors
/// When SQLite refuses a pragma.
pub fn sqlite_pragmas(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
    )
}

/// An r2d2 connection customizer applying [`sqlite_pragmas`] to every pooled connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlitePragmas;

impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        sqlite_pragmas(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}
