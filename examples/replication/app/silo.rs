//! Silos: one database each (a region or control), opened from a URL, as an
//! r2d2 pool of either backend.

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use outbox::cli::{parse_url, DatabaseUrl};

use super::schema::{teams, users};
use super::AppError;

/// A pool for one database, of either backend. Receivers get the other silos'
/// pools as worker resources and write to them with [`with_conn!`].
#[derive(Clone)]
pub enum SiloPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Pg(Pool<ConnectionManager<PgConnection>>),
}

/// A named database: `r1`, `r2`, ... in the order of `--region`, or `control`.
#[derive(Clone)]
pub struct Silo {
    pub name: String,
    pub url: String,
    pub pool: SiloPool,
}

/// Whether a silo holds region or control data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Region,
    Control,
}

impl Silo {
    /// Opens `url` with a pool of `size` connections. `create` lets a missing
    /// SQLite file be created (only `migrate` does that: elsewhere a missing
    /// file is a typo or a forgotten migration).
    pub fn open(name: &str, url: &str, size: u32, create: bool) -> Result<Silo, AppError> {
        let bad = |why: String| AppError::msg(format!("{name}: bad database URL `{url}`: {why}"));
        let pool = match parse_url(url).map_err(|e| bad(e.to_string()))? {
            DatabaseUrl::Sqlite(path) => {
                if !url.trim().starts_with("sqlite:") {
                    return Err(bad("write sqlite://PATH or postgres://USER@HOST/DB".into()));
                }
                if !create && !Path::new(&path).is_file() {
                    return Err(AppError::msg(format!(
                        "{name}: no SQLite database at `{path}`; run `replication migrate` first"
                    )));
                }
                let mut conn = SqliteConnection::establish(&path).map_err(|e| bad(e.to_string()))?;
                outbox::sqlite_pragmas(&mut conn).map_err(|e| bad(e.to_string()))?;
                SiloPool::Sqlite(
                    Pool::builder()
                        .max_size(size)
                        // Grow on demand: W threads x every silo would be many idle connections.
                        .min_idle(Some(1))
                        .connection_timeout(Duration::from_secs(30))
                        .connection_customizer(Box::new(outbox::SqlitePragmas))
                        .build(ConnectionManager::new(path))
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            DatabaseUrl::Postgres(pg) => {
                // Connect once first: a bad URL fails now with the driver's reason,
                // not after the pool's connection timeout.
                PgConnection::establish(&pg)
                    .map_err(|e| AppError::msg(format!("{name}: cannot connect to `{url}`: {e}")))?;
                SiloPool::Pg(
                    Pool::builder()
                        .max_size(size)
                        // Grow on demand: W threads x every silo would be many idle connections.
                        .min_idle(Some(1))
                        .connection_timeout(Duration::from_secs(30))
                        .build(ConnectionManager::new(pg))
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
        };
        Ok(Silo { name: name.to_string(), url: url.to_string(), pool })
    }

    pub fn kind(&self) -> Kind {
        if self.name == "control" {
            Kind::Control
        } else {
            Kind::Region
        }
    }

    /// Creates the outbox tables and the demo tables.
    pub fn migrate(&self) -> Result<(), AppError> {
        let ddl = match self.kind() {
            Kind::Region => super::schema::REGION_DDL,
            Kind::Control => super::schema::CONTROL_DDL,
        };
        with_conn!(&self.pool, |c| {
            outbox::migrate(c)?;
            c.batch_execute(ddl)?;
        });
        Ok(())
    }

    /// A clear error when `migrate` has not run on this database.
    pub fn check_migrated(&self) -> Result<(), AppError> {
        let hint = |what: &str| {
            AppError::msg(format!(
                "{} ({}): {what}; run `replication migrate --region URL ... --control URL` first",
                self.name, self.url
            ))
        };
        let kind = self.kind();
        with_conn!(&self.pool, |c| {
            outbox::inspect::check_tables(c).map_err(|e| hint(&e.to_string()))?;
            let demo = match kind {
                Kind::Region => teams::table.select(teams::id).limit(1).load::<i64>(c),
                Kind::Control => users::table.select(users::id).limit(1).load::<i64>(c),
            };
            demo.map_err(|e| hint(&format!("the demo tables are missing ({e})")))?;
        });
        Ok(())
    }

    /// Rows waiting in this database's outboxes.
    pub fn pending(&self) -> Result<i64, AppError> {
        Ok(with_conn!(&self.pool, |c| outbox::inspect::StatusReport::collect(c)?.total_pending))
    }
}

/// Opens every silo of the command line: regions `r1`, `r2`, ... then `control`.
pub fn open_all(regions: &[String], control: &str, size: u32, create: bool) -> Result<Vec<Silo>, AppError> {
    let mut silos = Vec::new();
    for (i, url) in regions.iter().enumerate() {
        silos.push(Silo::open(&region_name(i), url, size, create)?);
    }
    silos.push(Silo::open("control", control, size, create)?);
    Ok(silos)
}

/// The name of the `i`th `--region` (0-based): `r1`, `r2`, ...
pub fn region_name(i: usize) -> String {
    format!("r{}", i + 1)
}
