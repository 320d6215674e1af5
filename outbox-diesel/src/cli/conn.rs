//! Database URLs and connections of the command line.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};

use super::CliError;

/// A parsed `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (or `:memory:`).
    Sqlite(String),
    /// A PostgreSQL URL, as given.
    Postgres(String),
}

/// Parses `sqlite://PATH`, `sqlite:PATH`, a plain path, or `postgres://...`
/// (`postgresql://` too).
///
/// # Errors
/// [`CliError::BadUrl`] for an empty URL or path, or another scheme.
pub fn parse_url(url: &str) -> Result<DatabaseUrl, CliError> {
    let bad = |why: &str| CliError::BadUrl { url: url.to_string(), why: why.to_string() };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let rest = trimmed.split_once("://").map_or("", |(_, r)| r);
        if rest.is_empty() {
            return Err(bad("it names no server"));
        }
        return Ok(DatabaseUrl::Postgres(trimmed.to_string()));
    }
    let path = if let Some(path) = trimmed.strip_prefix("sqlite://") {
        path
    } else if let Some(path) = trimmed.strip_prefix("sqlite:") {
        path
    } else if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(bad(&format!("the scheme `{scheme}` is not supported")));
    } else {
        trimmed
    };
    if path.is_empty() {
        return Err(bad("it names no file"));
    }
    Ok(DatabaseUrl::Sqlite(path.to_string()))
}

/// An open connection of either backend.
pub enum AnyConnection {
    /// SQLite.
    Sqlite(SqliteConnection),
    /// PostgreSQL.
    Pg(PgConnection),
}

/// Parses `url` and connects. A SQLite file must exist: opening a missing one
/// would create an empty database and hide a typo.
///
/// # Errors
/// [`CliError::BadUrl`], [`CliError::Connect`].
pub fn connect(url: &str) -> Result<AnyConnection, CliError> {
    let connect_error = |e: diesel::ConnectionError| CliError::Connect { url: url.to_string(), reason: e.to_string() };
    match parse_url(url)? {
        DatabaseUrl::Sqlite(path) => {
            if path != ":memory:" && !path.starts_with("file:") {
                let file = Path::new(&path);
                if !file.is_file() {
                    let why = if file.exists() { "it is not a file" } else { "the file does not exist" };
                    return Err(CliError::BadUrl {
                        url: url.to_string(),
                        why: format!("SQLite database `{path}`: {why}"),
                    });
                }
            }
            let mut conn = SqliteConnection::establish(&path).map_err(connect_error)?;
            // Only wait for writers; the journal mode is the application's choice.
            conn.batch_execute("PRAGMA busy_timeout = 5000;")
                .map_err(|e| CliError::Connect { url: url.to_string(), reason: e.to_string() })?;
            Ok(AnyConnection::Sqlite(conn))
        }
        DatabaseUrl::Postgres(url) => Ok(AnyConnection::Pg(PgConnection::establish(&url).map_err(connect_error)?)),
    }
}
