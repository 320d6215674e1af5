//! `outbox_runner`: Sentry's test helper. Run a block, then drain everything it
//! (and the receivers it triggered) wrote, round after round.

use outbox_core::{registry, Direction};

use crate::backend::OutboxConnection;
use crate::drain::sql;
use crate::drain::{DrainError, DrainReport, Drainer, Failure, Filter};

/// Rounds [`outbox_runner`] allows before it reports a recursion limit.
pub const DEFAULT_MAX_ROUNDS: u32 = 10;

/// Why [`outbox_runner`] could not drain everything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// Receivers kept writing new outbox rows for more rounds than allowed.
    #[error("outbox recursion limit: still writing after {rounds} rounds; categories with pending rows: {}", categories.join(", "))]
    RecursionLimit {
        /// Rounds drained.
        rounds: u32,
        /// `Name (id)` of every category that still has rows.
        categories: Vec<String>,
    },
    /// A receiver failed (its shard backs off, or its group was quarantined).
    #[error("outbox delivery failed: {}", describe(failures))]
    Failed {
        /// The failures.
        failures: Vec<Failure>,
        /// What was done before.
        report: Box<DrainReport>,
    },
    /// A database error.
    #[error(transparent)]
    Drain(#[from] DrainError),
}

fn describe(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| {
            format!(
                "category {} object {} (attempt {}): {}",
                name(f.category),
                f.object_identifier,
                f.attempts,
                f.error
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn name(category: i32) -> String {
    registry()
        .category(category)
        .map_or_else(|| format!("unknown ({category})"), |c| format!("{} ({category})", c.name))
}

/// Runs `f`, then drains everything due, up to [`DEFAULT_MAX_ROUNDS`] rounds.
/// A round delivers the rows that existed when it started; rows written by
/// receivers during a round are delivered in the next one.
///
/// ```
/// # use diesel::{Connection, SqliteConnection};
/// use outbox::drain::Drainer;
/// use outbox::testing::outbox_runner;
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// let drainer = Drainer::builder().build()?;
/// let value = outbox_runner(&mut conn, &drainer, |_conn| {
///     // save models here; their messages are delivered before outbox_runner returns
///     42
/// })?;
/// assert_eq!(value, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`RunnerError::Failed`] when a receiver failed, [`RunnerError::RecursionLimit`]
/// when receivers kept writing.
pub fn outbox_runner<C, T, F>(conn: &mut C, drainer: &Drainer, f: F) -> Result<T, RunnerError>
where
    C: OutboxConnection,
    F: FnOnce(&mut C) -> T,
{
    outbox_runner_with(conn, drainer, DEFAULT_MAX_ROUNDS, f)
}

/// [`outbox_runner`] with a round limit.
///
/// # Errors
/// As [`outbox_runner`].
pub fn outbox_runner_with<C, T, F>(conn: &mut C, drainer: &Drainer, max_rounds: u32, f: F) -> Result<T, RunnerError>
where
    C: OutboxConnection,
    F: FnOnce(&mut C) -> T,
{
    let value = f(conn);
    drain_rounds(conn, drainer, max_rounds)?;
    Ok(value)
}

/// Drains round after round until nothing handled is left (see [`outbox_runner`]).
///
/// # Errors
/// As [`outbox_runner`].
pub fn drain_rounds<C: OutboxConnection>(
    conn: &mut C,
    drainer: &Drainer,
    max_rounds: u32,
) -> Result<DrainReport, RunnerError> {
    let mut report = DrainReport::default();
    for _ in 0..max_rounds {
        let max = {
            let mut db = conn.db();
            [
                sql::max_id(&mut db, Direction::Region).map_err(DrainError::from)?,
                sql::max_id(&mut db, Direction::Control).map_err(DrainError::from)?,
            ]
        };
        let round = drainer.drain_filtered(conn, &Filter { shards: None, max_id: Some(max) }, None)?;
        let failures = round.failures.clone();
        report.merge(round);
        if !failures.is_empty() {
            return Err(RunnerError::Failed { failures, report: Box::new(report) });
        }
        let pending = handled_pending(conn)?;
        if pending.is_empty() {
            return Ok(report);
        }
        let old = pending.iter().any(|(direction, id, _)| *id <= max[direction.code() as usize]);
        if old {
            // Rows from before the round are left: their shard is blocked or backing off.
            let failures = report.failures.clone();
            return Err(RunnerError::Failed { failures, report: Box::new(report) });
        }
    }
    let mut categories: Vec<String> = handled_pending(conn)?.into_iter().map(|(_, _, c)| name(c)).collect();
    categories.sort();
    categories.dedup();
    if categories.is_empty() {
        return Ok(report);
    }
    Err(RunnerError::RecursionLimit { rounds: max_rounds, categories })
}

/// `(direction, lowest id, category)` per handled category with rows left.
fn handled_pending<C: OutboxConnection>(conn: &mut C) -> Result<Vec<(Direction, i64, i32)>, DrainError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        category: i32,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        low: i64,
    }
    let mut out = Vec::new();
    for direction in Direction::ALL {
        let handled = sql::handled_categories(direction);
        if handled == "NULL" {
            continue;
        }
        let q = format!(
            "SELECT category, CAST(MIN(id) AS BIGINT) AS low FROM {} WHERE category IN ({handled}) GROUP BY category",
            direction.table()
        );
        let rows: Vec<Row> = crate::__with_db!(conn.db(), |c| diesel::RunQueryDsl::load(diesel::sql_query(&q), c))?;
        out.extend(rows.into_iter().map(|r| (direction, r.low, r.category)));
    }
    Ok(out)
}
