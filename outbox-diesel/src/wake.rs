//! In-process wake-ups: writers in this process tell sleeping workers that rows
//! committed, so they need not wait for the poll interval.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use outbox_core::FlushPolicy;

use crate::flush::Committed;

static EPOCH: Mutex<u64> = Mutex::new(0);
static CHANGED: Condvar = Condvar::new();

/// Wakes every worker of this process that waits in [`wait`].
pub fn notify() {
    let mut epoch = EPOCH.lock().unwrap_or_else(|e| e.into_inner());
    *epoch = epoch.wrapping_add(1);
    CHANGED.notify_all();
}

/// The current wake-up epoch; pass it to [`wait`].
pub fn epoch() -> u64 {
    *EPOCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sleeps until [`notify`] moves the epoch past `seen`, or `timeout` passes.
/// Returns whether it was woken.
pub fn wait(seen: u64, timeout: Duration) -> bool {
    let guard = EPOCH.lock().unwrap_or_else(|e| e.into_inner());
    let (guard, _) =
        CHANGED.wait_timeout_while(guard, timeout, |epoch| *epoch == seen).unwrap_or_else(|e| e.into_inner());
    *guard != seen
}

/// Applies the `Notify` flush of a committed transaction (other policies are
/// handled by their callers).
pub(crate) fn after_commit(committed: &Committed) {
    if committed.policy == FlushPolicy::Notify && !committed.shards.is_empty() {
        notify();
    }
}

/// Wakes in-process workers after a hook's write when it committed on its own
/// (the caller had no transaction open). Writes inside a transaction wake
/// workers when `outbox::transaction` commits, or through NOTIFY or polling.
pub(crate) fn after_write<C: crate::OutboxConnection>(conn: &mut C) {
    use diesel::connection::{Connection, TransactionManager};
    let status = <C as Connection>::TransactionManager::transaction_manager_status_mut(conn);
    if let Ok(None) = status.transaction_depth() {
        notify();
    }
}
