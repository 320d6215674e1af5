//! The `outbox` command line (feature `cli`), as a library so applications can
//! embed it and tests can run it in-process.
//!
//! ```text
//! outbox status            --database-url URL [--json] [--known-categories 0,2,5]
//! outbox shards --top N    --database-url URL [--json]
//! outbox shard SCOPE ID    --database-url URL [--json] [--region NAME] [--limit N]
//! outbox object CATEGORY ID --database-url URL [--json]
//! outbox quarantine list|retry ID|discard ID --database-url URL [--json]
//! outbox backfills         --database-url URL [--json]
//! ```
//!
//! URL is `sqlite://PATH` (or a plain file path) or `postgres://...`. Scopes
//! and categories are given by numeric id, or by name when the program links
//! the application's registry (an application calling [`run`] from its own
//! binary names everything; the standalone `outbox` binary shows ids).

mod conn;
mod render;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};
use outbox_core::Registry;
use serde::Serialize;

use crate::backend::OutboxConnection;
use crate::backfill::{self, BackfillOptions, BackfillSummary};
use crate::inspect::{self, InspectError, StatusReport};
use crate::model::OutboxModel;

pub use conn::{connect, parse_url, AnyConnection, DatabaseUrl};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Bad arguments, or `--help` / `--version` (print it with `clap::Error::print`).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// No `--database-url`.
    #[error("no database given: pass --database-url sqlite://PATH or --database-url postgres://USER@HOST/DB")]
    NoUrl,
    /// A URL of no supported form.
    #[error("bad database URL `{url}`: {why}; use sqlite://PATH (or a file path) or postgres://USER@HOST/DB")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The database refused the connection.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL given.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// The inspector failed (missing tables, unknown scope or category, ...).
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// Reading backfill watermarks failed.
    #[error(transparent)]
    Outbox(#[from] crate::Error),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding JSON failed.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Inspect and operate the outboxes of one database.
#[derive(Debug, Parser)]
#[command(
    name = "outbox",
    version,
    about = "Inspect and operate the outboxes of one database (sqlite://PATH or postgres://...)"
)]
pub struct Cli {
    /// sqlite://PATH (or a file path) or postgres://USER@HOST/DB
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print JSON (numbers as numbers) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Category ids this application knows; other ids are reported as unknown
    /// (an application's own registry knows them without this).
    #[arg(long, global = true, value_delimiter = ',', value_name = "IDS")]
    pub known_categories: Option<Vec<i32>>,
    /// What to show.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pending rows per direction, scope and category; shards in backoff;
    /// quarantined groups; rows of unknown categories.
    Status,
    /// The deepest shards.
    Shards {
        /// How many.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// One shard's messages, newest first.
    Shard {
        /// Scope id (or name, when known).
        scope: String,
        /// Shard identifier.
        #[arg(allow_negative_numbers = true)]
        id: i64,
        /// Only the control shard of this region.
        #[arg(long)]
        region: Option<String>,
        /// At most this many messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Every outbox row and quarantined group of one object.
    Object {
        /// Category id (or name, when known).
        category: String,
        /// Object identifier.
        #[arg(allow_negative_numbers = true)]
        id: i64,
    },
    /// Dead letters: list, retry or discard.
    Quarantine {
        /// What to do.
        #[command(subcommand)]
        action: QuarantineAction,
    },
    /// Stored backfill watermarks.
    Backfills,
}

/// `outbox quarantine ...`.
#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// Every quarantined group, oldest first.
    List,
    /// Move a group back into its outbox, due now, and clear its shard's backoff.
    Retry {
        /// The group's id (from `quarantine list`).
        id: i64,
    },
    /// Delete a group for good; a shard it blocked goes on.
    Discard {
        /// The group's id.
        id: i64,
    },
}

/// Runs the command line `args` (program name first) and writes to `out`,
/// naming scopes and categories with this binary's registry.
///
/// # Errors
/// [`CliError`]; its `Display` is the message for the user.
pub fn run<I, T>(args: I, out: &mut dyn Write) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_registry(args, outbox_core::registry(), out)
}

/// [`run`] with an explicit registry (an application's, or an empty one).
///
/// # Errors
/// As [`run`].
pub fn run_with_registry<I, T>(args: I, registry: &Registry, out: &mut dyn Write) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let url = cli.database_url.as_deref().ok_or(CliError::NoUrl)?;
    let mut conn = connect(url)?;
    match &mut conn {
        AnyConnection::Sqlite(c) => execute(&cli, registry, c, out),
        AnyConnection::Pg(c) => execute(&cli, registry, c, out),
    }
}

fn emit<T: Serialize>(
    json: bool,
    out: &mut dyn Write,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<(), CliError> {
    if json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", table())?;
    }
    Ok(())
}

/// Runs a parsed command on an open connection.
///
/// # Errors
/// As [`run`].
pub fn execute<C: OutboxConnection>(
    cli: &Cli,
    registry: &Registry,
    conn: &mut C,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let json = cli.json;
    match &cli.command {
        Command::Status => {
            let mut report = StatusReport::collect(conn)?.with_registry(registry);
            if let Some(known) = &cli.known_categories {
                report = report.with_known_categories(known);
            }
            emit(json, out, &report, || render::status(&report))
        }
        Command::Shards { top } => {
            let shards: Vec<_> =
                inspect::top_shards(conn, *top)?.into_iter().map(|s| s.with_registry(registry)).collect();
            emit(json, out, &shards, || render::shards(&shards))
        }
        Command::Shard { scope, id, region, limit } => {
            let scope = inspect::resolve_scope(registry, scope)?;
            let rows: Vec<_> = inspect::shard_messages(conn, scope, *id, region.as_deref(), *limit)?
                .into_iter()
                .map(|r| r.with_registry(registry))
                .collect();
            emit(json, out, &rows, || render::messages(&rows))
        }
        Command::Object { category, id } => {
            let category = inspect::resolve_category(registry, category)?;
            let report = inspect::object_rows(conn, category, *id)?.with_registry(registry);
            emit(json, out, &report, || render::object(&report))
        }
        Command::Quarantine { action } => match action {
            QuarantineAction::List => {
                let mut groups = inspect::quarantine_list(conn)?;
                groups.iter_mut().for_each(|g| g.name(registry));
                emit(json, out, &groups, || render::quarantine(&groups))
            }
            QuarantineAction::Retry { id } => {
                let mut retried = inspect::quarantine_retry(conn, *id)?;
                retried.group.name(registry);
                emit(json, out, &retried, || {
                    format!("retried quarantined group {id}: outbox row {} is due now\n", retried.row_id)
                })
            }
            QuarantineAction::Discard { id } => {
                let mut group = inspect::quarantine_discard(conn, *id)?;
                group.name(registry);
                emit(json, out, &group, || format!("discarded quarantined group {id}\n"))
            }
        },
        Command::Backfills => {
            inspect::check_tables(conn)?;
            let marks = backfill::watermarks(conn)?;
            emit(json, out, &marks, || render::watermarks(&marks))
        }
    }
}

/// [`backfill::run_with_progress`] with an indicatif progress bar on stderr:
/// a bar when `expected_rows` is known (e.g. `SELECT count(*)` of the table),
/// a spinner with counts otherwise.
///
/// # Errors
/// As [`backfill::run`].
pub fn backfill_with_bar<M: OutboxModel, C: OutboxConnection>(
    conn: &mut C,
    options: BackfillOptions,
    expected_rows: Option<u64>,
) -> crate::Result<BackfillSummary> {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = match expected_rows {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(format!("backfill {} v{}", M::TABLE_NAME, M::REPLICATION_VERSION));
    let summary = backfill::run_with_progress::<M, C, _>(conn, options, |p| {
        bar.set_position(p.rows_done);
        bar.set_message(format!("backfill {} v{} (low id {})", p.table, p.version, p.low_id));
    });
    match &summary {
        Ok(s) => bar.finish_with_message(format!("backfill {} v{}: {:?}", s.table, s.version, s.end)),
        Err(_) => bar.abandon(),
    }
    summary
}
