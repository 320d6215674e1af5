//! `Synchronous` flushes: deliver what a transaction wrote, in the caller's
//! thread, right after it commits.

use std::fmt;

use outbox_core::FlushPolicy;

use super::{DrainReport, Drainer, Failure};
use crate::backend::OutboxConnection;
use crate::flush::{transaction_with, Committed};

/// The transaction **committed**, but delivering what it wrote did not finish.
/// Nothing is lost: the rows stay in the outbox and workers retry them (after
/// the shard's backoff when a receiver failed). Callers usually log it and go on.
#[derive(Debug, thiserror::Error)]
#[error("the transaction committed, but delivering its outbox messages failed; workers will retry: {reason}")]
pub struct Undelivered {
    /// Why (a receiver error, or a database error).
    pub reason: String,
    /// Receiver failures, when delivery ran.
    pub failures: Vec<Failure>,
}

/// Error of [`transaction_synchronous`]: either nothing happened, or the data
/// committed and only the delivery is pending.
#[derive(Debug)]
pub enum SyncFlushError<T, E> {
    /// The transaction failed and rolled back: nothing was written or delivered.
    Transaction(E),
    /// The transaction committed (`value` is what it returned); delivery will be
    /// retried by workers.
    Undelivered {
        /// The transaction's result.
        value: T,
        /// What went wrong with the delivery.
        error: Undelivered,
    },
}

impl<T, E> SyncFlushError<T, E> {
    /// Whether the data committed (only the delivery is pending).
    pub fn committed(&self) -> bool {
        matches!(self, SyncFlushError::Undelivered { .. })
    }
}

impl<T, E: fmt::Display> fmt::Display for SyncFlushError<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncFlushError::Transaction(e) => write!(f, "the transaction rolled back: {e}"),
            SyncFlushError::Undelivered { error, .. } => write!(f, "{error}"),
        }
    }
}

impl<T: fmt::Debug, E: std::error::Error + 'static> std::error::Error for SyncFlushError<T, E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SyncFlushError::Transaction(e) => Some(e),
            SyncFlushError::Undelivered { error, .. } => Some(error),
        }
    }
}

/// Runs `f` in a transaction with [`FlushPolicy::Synchronous`]: once it commits,
/// the shards it wrote are delivered in this thread with `drainer`'s settings and
/// resources, before this function returns.
///
/// ```
/// # use diesel::{Connection, SqliteConnection};
/// use outbox::drain::{transaction_synchronous, Drainer};
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// let drainer = Drainer::builder().build()?;
/// let n = transaction_synchronous(&mut conn, &drainer, |_conn| {
///     // save models: their messages are delivered before this call returns
///     Ok::<_, outbox::Error>(3)
/// })?;
/// assert_eq!(n, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`SyncFlushError::Transaction`] when `f` or the commit failed (nothing
/// happened); [`SyncFlushError::Undelivered`] when the data committed but a
/// receiver or the database failed during delivery.
pub fn transaction_synchronous<C, T, E, F>(conn: &mut C, drainer: &Drainer, f: F) -> Result<T, SyncFlushError<T, E>>
where
    C: OutboxConnection,
    F: FnOnce(&mut C) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let (value, committed) =
        transaction_with(conn, FlushPolicy::Synchronous, f).map_err(SyncFlushError::Transaction)?;
    let Some(committed) = committed else { return Ok(value) };
    match flush(drainer, conn, &committed) {
        Ok(_) => Ok(value),
        Err(error) => Err(SyncFlushError::Undelivered { value, error }),
    }
}

pub(crate) fn flush<C: OutboxConnection>(
    drainer: &Drainer,
    conn: &mut C,
    committed: &Committed,
) -> Result<DrainReport, Undelivered> {
    match committed.policy {
        FlushPolicy::Deferred => Ok(DrainReport::default()),
        FlushPolicy::Notify => {
            crate::wake::after_commit(committed);
            Ok(DrainReport::default())
        }
        FlushPolicy::Synchronous => {
            let _span = tracing::debug_span!("outbox.flush", shards = committed.shards.len()).entered();
            let report = drainer
                .drain_shards(conn, &committed.shards)
                .map_err(|e| Undelivered { reason: e.to_string(), failures: Vec::new() })?;
            if let Some(first) = report.failures.first() {
                let reason = format!(
                    "category {} object {} failed (attempt {}): {}",
                    first.category, first.object_identifier, first.attempts, first.error
                );
                return Err(Undelivered { reason, failures: report.failures });
            }
            Ok(report)
        }
    }
}
