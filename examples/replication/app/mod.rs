//! The replication demo as a library: [`run`] is `main`, [`run_with`] is what
//! tests call in-process (output captured, shutdown by a flag instead of a signal).
//!
//! Silos: every `--region URL` is a region database, named `r1`, `r2`, ... in
//! the order given (keep the order the same across commands), and `--control
//! URL` is the control database. URL is `sqlite://PATH` or `postgres://...`.
//!
//! Exit status: 0 done (for `verify`: consistent), 1 `verify` found
//! differences, 2 bad arguments or an error (printed on stderr).

use std::ffi::OsString;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

/// Runs `$body` with `$c` bound to a pooled connection of the silo's backend
/// (`&mut SqliteConnection` or `&mut PgConnection`): one copy of the Diesel
/// code per backend, no generic Diesel bounds.
macro_rules! with_conn {
    ($pool:expr, |$c:ident| $body:expr) => {
        match $pool {
            $crate::app::silo::SiloPool::Sqlite(pool) => {
                let mut guard = pool.get()?;
                let $c: &mut diesel::SqliteConnection = &mut guard;
                $body
            }
            $crate::app::silo::SiloPool::Pg(pool) => {
                let mut guard = pool.get()?;
                let $c: &mut diesel::PgConnection = &mut guard;
                $body
            }
        }
    };
}

pub mod models;
mod ops;
mod produce;
pub mod schema;
pub mod silo;
mod verify;
mod work;

/// An error for the user: one line, no backtrace.
#[derive(Debug)]
pub struct AppError(pub String);

impl AppError {
    pub fn msg(message: impl std::fmt::Display) -> AppError {
        AppError(message.to_string())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for AppError {
    fn from(e: E) -> AppError {
        AppError(e.to_string())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Outbox replication between region databases and a control database.
#[derive(Debug, Parser)]
#[command(name = "replication", about = "Outbox replication demo: region databases and a control database")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The databases, common to every command.
#[derive(Debug, Args, Clone)]
pub struct Silos {
    /// A region database (repeat for more regions; named r1, r2, ... in this order).
    #[arg(long = "region", value_name = "URL", required = true)]
    pub regions: Vec<String>,
    /// The control database.
    #[arg(long, value_name = "URL")]
    pub control: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the outbox tables and the demo tables in every database.
    Migrate {
        #[command(flatten)]
        silos: Silos,
    },
    /// Perform N random operations, each in its own transaction; print one JSON line.
    Produce {
        #[command(flatten)]
        silos: Silos,
        /// How many operations.
        #[arg(long)]
        ops: u64,
        /// Random seed (same seed, same operations on the same starting data).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Drain every database's outboxes until SIGINT/SIGTERM, or until idle.
    Work {
        #[command(flatten)]
        silos: Silos,
        /// Worker threads per database.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Exit 0 once every outbox is empty.
        #[arg(long)]
        until_idle: bool,
    },
    /// Compare every source table with its replicas; print one JSON line; exit 0 only when consistent.
    Verify {
        #[command(flatten)]
        silos: Silos,
    },
    /// The inspector's status report of every database, with category names.
    Status {
        #[command(flatten)]
        silos: Silos,
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Write outbox rows for rows of the demo models that have none (rows that predate replication).
    Backfill {
        #[command(flatten)]
        silos: Silos,
        /// Model rows per batch (one transaction each).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// At most this many rows a minute per model (0: no limit).
        #[arg(long, default_value_t = 0)]
        rows_per_minute: u32,
    },
}

/// `main`: parses `args` (program name first), handles SIGINT/SIGTERM, returns the exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("replication: cannot handle signal {signal}: {e}");
            return 2;
        }
    }
    run_with(args, &mut std::io::stdout(), &stop)
}

/// [`run`] writing results to `out`; `work` (without `--until-idle`) stops when `stop` is set.
pub fn run_with<I, T>(args: I, out: &mut dyn Write, stop: &AtomicBool) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match execute(cli.command, out, stop) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("replication: error: {e}");
            2
        }
    }
}

/// [`run_with`] returning the error instead of printing it (for tests).
#[allow(dead_code)] // the binary prints errors; tests/replication_demo.rs reads them
pub fn try_run<I, T>(args: I, out: &mut dyn Write, stop: &AtomicBool) -> Result<i32, AppError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|e| AppError::msg(e.to_string().trim_end()))?;
    execute(cli.command, out, stop)
}

fn execute(command: Command, out: &mut dyn Write, stop: &AtomicBool) -> Result<i32, AppError> {
    outbox::registry().validate().map_err(|e| AppError::msg(format!("invalid outbox registry: {e}")))?;
    match command {
        Command::Migrate { silos } => ops::migrate(&silos, out),
        Command::Produce { silos, ops, seed } => produce::produce(&silos, ops, seed, out),
        Command::Work { silos, workers, until_idle } => work::work(&silos, workers.max(1), until_idle, stop, out),
        Command::Verify { silos } => verify::verify(&silos, out),
        Command::Status { silos, json } => ops::status(&silos, json, out),
        Command::Backfill { silos, batch_size, rows_per_minute } => {
            ops::backfill(&silos, batch_size, rows_per_minute, out)
        }
    }
}
