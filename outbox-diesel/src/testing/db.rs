//! Throw-away databases for tests: a SQLite file in a temporary directory, or a
//! fresh schema in a PostgreSQL database, so tests run in parallel.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};

/// Environment variable naming the PostgreSQL server tests use
/// (default `postgres://postgres@127.0.0.1:5432/test`).
pub const POSTGRES_URL_ENV: &str = "OUTBOX_TEST_DATABASE_URL";

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of its own for one test, dropped with the value.
///
/// ```
/// use outbox::testing::TestDb;
/// use diesel::Connection;
///
/// let db = TestDb::sqlite();
/// let mut conn = db.sqlite_connection();
/// outbox::migrate(&mut conn)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TestDb {
    url: String,
    kind: Kind,
}

enum Kind {
    #[cfg(feature = "sqlite")]
    Sqlite { _dir: tempfile::TempDir },
    #[cfg(feature = "postgres")]
    Postgres { base_url: String, schema: String },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos % 1_000_000_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl TestDb {
    /// A SQLite database in a new temporary file.
    ///
    /// # Panics
    /// When no temporary directory can be created.
    #[cfg(feature = "sqlite")]
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temporary directory for the test database");
        let path = dir.path().join("outbox-test.sqlite3");
        TestDb { url: path.to_string_lossy().into_owned(), kind: Kind::Sqlite { _dir: dir } }
    }

    /// A new schema in the PostgreSQL server of `OUTBOX_TEST_DATABASE_URL`.
    ///
    /// Returns `None`, after saying loudly on stderr what was skipped and how to
    /// enable it, when the server is unreachable, unless `CI` is set: then a
    /// missing server is a failure.
    ///
    /// # Panics
    /// When `CI` is set and the server is unreachable, or the schema cannot be created.
    #[cfg(feature = "postgres")]
    pub fn postgres() -> Option<TestDb> {
        let base_url = std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
        let mut conn = match PgConnection::establish(&base_url) {
            Ok(conn) => conn,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "\n*** SKIPPED PostgreSQL half of this test: cannot connect to {base_url}: {e}\n\
                     *** start PostgreSQL or set {POSTGRES_URL_ENV}; with CI=true this is a failure ***\n"
                );
                return None;
            }
            Err(e) => panic!("PostgreSQL is mandatory in CI but {base_url} is unreachable: {e}"),
        };
        let schema = unique_name("outbox_test");
        diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut conn).expect("create the test schema");
        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
        Some(TestDb { url, kind: Kind::Postgres { base_url, schema } })
    }

    /// Every backend available here: SQLite always, PostgreSQL when reachable
    /// (see [`TestDb::postgres`]). Tests loop over it to cover both.
    pub fn all() -> Vec<TestDb> {
        let mut dbs = Vec::new();
        #[cfg(feature = "sqlite")]
        dbs.push(TestDb::sqlite());
        #[cfg(feature = "postgres")]
        dbs.extend(TestDb::postgres());
        dbs
    }

    /// The connection URL (`sqlite` file path, or a `postgres://` URL whose
    /// `search_path` is the test schema).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend.
    pub fn backend(&self) -> crate::Backend {
        match self.kind {
            #[cfg(feature = "sqlite")]
            Kind::Sqlite { .. } => crate::Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Kind::Postgres { .. } => crate::Backend::Postgres,
        }
    }

    /// A short name for messages: "sqlite" or "postgres".
    pub fn name(&self) -> &'static str {
        match self.backend() {
            crate::Backend::Sqlite => "sqlite",
            crate::Backend::Postgres => "postgres",
        }
    }

    /// A new SQLite connection (WAL mode, 5 s busy timeout, so concurrent
    /// workers wait for the write lock instead of failing).
    ///
    /// # Panics
    /// On a PostgreSQL test database, or when the file cannot be opened.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_connection(&self) -> SqliteConnection {
        assert!(matches!(self.kind, Kind::Sqlite { .. }), "sqlite_connection() on a {} test database", self.name());
        let mut conn = SqliteConnection::establish(&self.url).expect("open the SQLite test database");
        crate::sqlite_pragmas(&mut conn).expect("set SQLite pragmas");
        conn
    }

    /// A new PostgreSQL connection to the test schema.
    ///
    /// # Panics
    /// On a SQLite test database, or when the server refuses.
    #[cfg(feature = "postgres")]
    pub fn pg_connection(&self) -> PgConnection {
        assert!(matches!(self.kind, Kind::Postgres { .. }), "pg_connection() on a {} test database", self.name());
        PgConnection::establish(&self.url).expect("connect to the PostgreSQL test schema")
    }

    /// An r2d2 pool of SQLite connections with the same settings as
    /// [`TestDb::sqlite_connection`].
    ///
    /// # Panics
    /// When the pool cannot be built.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_pool(&self, size: u32) -> Pool<ConnectionManager<SqliteConnection>> {
        Pool::builder()
            .max_size(size)
            .connection_customizer(Box::new(crate::SqlitePragmas))
            .build(ConnectionManager::new(self.url.clone()))
            .expect("build a SQLite pool")
    }

    /// An r2d2 pool of PostgreSQL connections to the test schema.
    ///
    /// # Panics
    /// When the pool cannot be built.
    #[cfg(feature = "postgres")]
    pub fn pg_pool(&self, size: u32) -> Pool<ConnectionManager<PgConnection>> {
        Pool::builder().max_size(size).build(ConnectionManager::new(self.url.clone())).expect("build a PostgreSQL pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let Kind::Postgres { base_url, schema } = &self.kind {
            if let Ok(mut conn) = PgConnection::establish(base_url) {
                let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn);
            }
        }
    }
}
