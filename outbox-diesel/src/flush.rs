//! `outbox::transaction`: Sentry's `outbox_context`. It records which shards a
//! transaction wrote so they can be flushed after commit, by the policy given.

use std::cell::RefCell;
use std::collections::BTreeSet;

use outbox_core::{Direction, FlushPolicy};

use crate::backend::OutboxConnection;
use crate::write::OutboxRow;

/// A shard: (direction, scope, shard identifier, region name or "").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardKey {
    /// Which outbox.
    pub direction: Direction,
    /// `shard_scope`.
    pub shard_scope: i32,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// `region_name` of control shards; empty for region shards.
    pub region_name: String,
}

impl ShardKey {
    /// The shard of a row.
    pub fn of(row: &OutboxRow) -> Self {
        ShardKey {
            direction: row.direction(),
            shard_scope: row.shard_scope,
            shard_identifier: row.shard_identifier,
            region_name: row.region_name.clone().unwrap_or_default(),
        }
    }
}

struct Frame {
    policy: FlushPolicy,
    written: BTreeSet<ShardKey>,
}

thread_local! {
    // A stack: nested `transaction` calls each get a frame; an inner frame's shards
    // move to the outer one on success, because only the outermost commit is real.
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Notes the shards of rows just written, for the innermost open
/// [`transaction`]. Rows written outside one are not recorded.
pub(crate) fn record(rows: &[OutboxRow]) {
    FRAMES.with(|frames| {
        if let Some(frame) = frames.borrow_mut().last_mut() {
            frame.written.extend(rows.iter().map(ShardKey::of));
        }
    });
}

/// The shards written so far by the innermost open [`transaction`] on this thread.
pub fn pending_shards() -> Vec<ShardKey> {
    FRAMES.with(|frames| frames.borrow().last().map(|f| f.written.iter().cloned().collect()).unwrap_or_default())
}

/// What a committed [`transaction`] wrote, handed to the flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The policy the transaction ran with.
    pub policy: FlushPolicy,
    /// The shards it wrote, in order.
    pub shards: Vec<ShardKey>,
}

/// Runs `f` in a transaction (a savepoint when one is already open) and, once the
/// outermost one commits, flushes the shards it wrote with [`FlushPolicy::Notify`].
///
/// A rollback discards the rows and the flush alike.
///
/// ```
/// # use diesel::{Connection, SqliteConnection};
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// let n = outbox::transaction(&mut conn, |conn| {
///     // save models, write messages ...
///     Ok::<_, outbox::Error>(1)
/// })?;
/// assert_eq!(n, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn transaction<C, T, E, F>(conn: &mut C, f: F) -> Result<T, E>
where
    C: OutboxConnection,
    F: FnOnce(&mut C) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    transaction_with(conn, FlushPolicy::Notify, f).map(|(value, committed)| {
        if let Some(committed) = committed {
            crate::wake::after_commit(&committed);
        }
        value
    })
}

/// Like [`transaction`], with an explicit policy; returns what the outermost
/// commit wrote (`None` for a nested call, whose shards go to the outer one)
/// instead of flushing it, so callers choose how to deliver.
pub fn transaction_with<C, T, E, F>(conn: &mut C, policy: FlushPolicy, f: F) -> Result<(T, Option<Committed>), E>
where
    C: OutboxConnection,
    F: FnOnce(&mut C) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let outermost = FRAMES.with(|frames| {
        let mut frames = frames.borrow_mut();
        frames.push(Frame { policy, written: BTreeSet::new() });
        frames.len() == 1
    });
    let guard = PopFrame;
    let result = conn.transaction(|conn| {
        if outermost && policy != FlushPolicy::Notify {
            suppress_notify(conn)?;
        }
        f(conn)
    });
    let frame = guard.pop();
    let value = result?;
    let outer = FRAMES.with(|frames| {
        let mut frames = frames.borrow_mut();
        match frames.last_mut() {
            Some(outer) => {
                outer.written.extend(frame.written.iter().cloned());
                true
            }
            None => false,
        }
    });
    let committed = (!outer).then(|| Committed { policy: frame.policy, shards: frame.written.into_iter().collect() });
    Ok((value, committed))
}

/// On PostgreSQL the outbox tables' trigger sends `NOTIFY` at commit unless the
/// transaction sets `outbox.notify = off`: `Deferred` wants no wake-up, and a
/// `Synchronous` flush delivers itself (a woken worker would only race it).
fn suppress_notify<C: OutboxConnection, E: From<diesel::result::Error>>(conn: &mut C) -> Result<(), E> {
    match conn.db() {
        #[cfg(feature = "postgres")]
        crate::backend::DbConn::Pg(c) => {
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT set_config('outbox.notify', 'off', true)").execute(c).map_err(E::from)?;
            Ok(())
        }
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    }
}

/// Pops the frame even when `f` panics, so a later transaction on this thread
/// does not inherit stale shards.
struct PopFrame;

impl PopFrame {
    fn pop(self) -> Frame {
        let frame = FRAMES.with(|frames| frames.borrow_mut().pop()).expect("frame pushed by transaction_with");
        std::mem::forget(self);
        frame
    }
}

impl Drop for PopFrame {
    fn drop(&mut self) {
        FRAMES.with(|frames| frames.borrow_mut().pop());
    }
}
