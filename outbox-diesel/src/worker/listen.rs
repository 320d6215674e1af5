//! PostgreSQL LISTEN: a thread holding one pooled connection that turns
//! `NOTIFY`s sent at commit (by the outbox tables' trigger) into in-process
//! wake-ups.
//!
//! Diesel's `notifications_iter` does not block: it reads what the socket has
//! already received (`PQconsumeInput`, no round trip to the server). The thread
//! checks every 20 ms, which costs a few cheap syscalls and bounds the added
//! latency at 20 ms, without a second PostgreSQL client library.

use std::sync::atomic::AtomicBool;
#[cfg(feature = "postgres")]
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
#[cfg(feature = "postgres")]
use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool, R2D2Connection};

use crate::backend::OutboxConnection;

#[cfg(feature = "postgres")]
pub(crate) fn spawn<C>(pool: Pool<ConnectionManager<C>>, stop: Arc<AtomicBool>) -> Option<JoinHandle<()>>
where
    C: OutboxConnection + R2D2Connection,
{
    // Only PostgreSQL pools listen.
    {
        let mut conn = pool.get().ok()?;
        if conn.db().backend() != crate::Backend::Postgres {
            return None;
        }
    }
    std::thread::Builder::new().name("outbox-listen".into()).spawn(move || run(&pool, &stop)).ok()
}

#[cfg(not(feature = "postgres"))]
pub(crate) fn spawn<C>(_pool: Pool<ConnectionManager<C>>, _stop: Arc<AtomicBool>) -> Option<JoinHandle<()>>
where
    C: OutboxConnection + R2D2Connection,
{
    None
}

#[cfg(feature = "postgres")]
fn run<C>(pool: &Pool<ConnectionManager<C>>, stop: &AtomicBool)
where
    C: OutboxConnection + R2D2Connection,
{
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Schema {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }

    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "outbox LISTEN: no connection; retrying");
                std::thread::sleep(Duration::from_millis(200 << failures.min(5)));
                continue;
            }
        };
        #[allow(irrefutable_let_patterns)]
        let crate::DbConn::Pg(pg) = conn.db() else {
            return;
        };
        let listened = diesel::sql_query("SELECT current_schema() AS name").load::<Schema>(pg).and_then(|s| {
            let schema = s.into_iter().next().map(|s| s.name).unwrap_or_else(|| "public".into());
            let channel = format!("outbox.{schema}").replace('"', "\"\"");
            pg.batch_execute(&format!("LISTEN \"{channel}\""))
        });
        if let Err(e) = listened {
            failures += 1;
            tracing::warn!(error = %e, "outbox LISTEN failed; retrying");
            std::thread::sleep(Duration::from_millis(200 << failures.min(5)));
            continue;
        }
        failures = 0;
        // Rows may have committed while we were not listening.
        crate::wake::notify();
        'listening: while !stop.load(Ordering::Relaxed) {
            let mut woke = false;
            for n in pg.notifications_iter() {
                match n {
                    Ok(_) => woke = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox LISTEN connection lost; reconnecting");
                        break 'listening;
                    }
                }
            }
            if woke {
                crate::wake::notify();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = pg.batch_execute("UNLISTEN *");
    }
}
