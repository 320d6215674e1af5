//! One type for "a connection of any enabled backend", so generated code and the
//! drain engine are written once per backend without generic Diesel bounds.

use diesel::Connection;

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("outbox needs a backend: enable the `sqlite` or `postgres` feature");

/// The backends outbox supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (bundled, the embedded default).
    Sqlite,
    /// PostgreSQL (the production backend).
    Postgres,
}

/// A borrowed connection of one of the enabled backends.
pub enum DbConn<'a> {
    /// A SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut diesel::SqliteConnection),
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Pg(&'a mut diesel::PgConnection),
}

impl DbConn<'_> {
    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            DbConn::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            DbConn::Pg(_) => Backend::Postgres,
        }
    }

    /// Reborrows for a shorter lifetime.
    pub fn reborrow(&mut self) -> DbConn<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            DbConn::Sqlite(c) => DbConn::Sqlite(c),
            #[cfg(feature = "postgres")]
            DbConn::Pg(c) => DbConn::Pg(c),
        }
    }

    /// The connection as `dyn Any`, as receivers see it.
    pub fn as_any(&mut self) -> &mut dyn std::any::Any {
        match self {
            #[cfg(feature = "sqlite")]
            DbConn::Sqlite(c) => *c,
            #[cfg(feature = "postgres")]
            DbConn::Pg(c) => *c,
        }
    }

    /// Recovers the connection from what [`DbConn::as_any`] gave a receiver.
    pub fn from_any(any: &mut dyn std::any::Any) -> Option<DbConn<'_>> {
        #[cfg(feature = "sqlite")]
        if any.is::<diesel::SqliteConnection>() {
            return any.downcast_mut().map(DbConn::Sqlite);
        }
        #[cfg(feature = "postgres")]
        if any.is::<diesel::PgConnection>() {
            return any.downcast_mut().map(DbConn::Pg);
        }
        None
    }
}

/// A Diesel connection outbox can write to and drain: `SqliteConnection`,
/// `PgConnection`, or an r2d2 pooled connection of either.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection outbox supports",
    note = "pass a `SqliteConnection` or `PgConnection` (or a pooled one), with the matching `outbox` feature enabled"
)]
pub trait OutboxConnection: Connection + Send + 'static {
    /// The connection as the enum every backend-specific path matches on.
    fn db(&mut self) -> DbConn<'_>;
}

#[cfg(feature = "sqlite")]
impl OutboxConnection for diesel::SqliteConnection {
    fn db(&mut self) -> DbConn<'_> {
        DbConn::Sqlite(self)
    }
}

#[cfg(feature = "postgres")]
impl OutboxConnection for diesel::PgConnection {
    fn db(&mut self) -> DbConn<'_> {
        DbConn::Pg(self)
    }
}

impl<C> OutboxConnection for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>>
where
    C: OutboxConnection + Connection + diesel::r2d2::R2D2Connection,
{
    fn db(&mut self) -> DbConn<'_> {
        (**self).db()
    }
}

/// Runs one expression per backend on a [`DbConn`], with `$c` bound to the
/// concrete connection. Generated code uses it so each arm type-checks against
/// one backend, with no generic Diesel bounds to spell out.
///
/// The arms are chosen by *this* crate's features, so user crates need no
/// features of their own.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::DbConn::Sqlite($c) => $body,
            $crate::DbConn::Pg($c) => $body,
        }
    };
}

#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::DbConn::Sqlite($c) => $body,
        }
    };
}

#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_db {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::DbConn::Pg($c) => $body,
        }
    };
}
