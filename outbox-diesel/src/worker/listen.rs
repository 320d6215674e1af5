//! PostgreSQL LISTEN: a thread that turns the `NOTIFY`s sent at commit (by the
//! outbox tables' statement trigger, on channel `outbox.<schema>`) into
//! in-process wake-ups ([`crate::wake::notify`]).
//!
//! Two listeners, picked by [`super::WorkerBuilder::listen_url`]:
//!
//! * **With a URL** (Unix): a dedicated libpq connection (`pq-sys`, the library
//!   Diesel's `PgConnection` already links) that blocks in `poll(2)` on the
//!   connection's socket. A NOTIFY wakes the workers as soon as it reaches the
//!   socket (well under a millisecond locally). Why a connection of its own
//!   rather than the pool's: Diesel exposes neither the socket of a
//!   `PgConnection` nor the URL of a `ConnectionManager`, and holding a pooled
//!   connection forever would take it from the workers. Why `poll` on
//!   `PQsocket` + `PQconsumeInput` + `PQnotifies`: it is libpq's documented way
//!   to wait for notifications, needs no async runtime and no second client
//!   library. The wait times out every 100 ms to check for shutdown (and to
//!   read anything an encryption layer buffered without the socket turning
//!   readable). The connection is opened with TCP keepalives (30 s idle, 3
//!   probes 10 s apart), a 10 s connect timeout and `fallback_application_name
//!   = outbox-listen`; settings in the URL win over these. A lost connection
//!   is logged, reopened with backoff, and followed by a wake-up: rows may have
//!   committed while nobody listened.
//! * **Without a URL** (or off Unix): one pooled Diesel connection polled with
//!   `notifications_iter` every 20 ms (it reads what the socket already holds,
//!   without a round trip), which adds up to 20 ms to wake-ups from other
//!   processes.
//!
//! Both listen on the schema of the pool's connections (`SELECT
//! current_schema()` on a pooled connection), which is what the writers' trigger
//! uses even when a connection customizer sets `search_path`.

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
pub(crate) fn spawn<C>(
    pool: Pool<ConnectionManager<C>>,
    url: Option<String>,
    stop: Arc<AtomicBool>,
) -> Option<JoinHandle<()>>
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
    std::thread::Builder::new()
        .name("outbox-listen".into())
        .spawn(move || match url {
            #[cfg(unix)]
            Some(url) => libpq::run(&pool, &url, &stop),
            #[cfg(not(unix))]
            Some(_) => {
                tracing::debug!("outbox LISTEN: blocking listener needs Unix; polling the pool instead");
                run(&pool, &stop)
            }
            None => run(&pool, &stop),
        })
        .ok()
}

#[cfg(not(feature = "postgres"))]
pub(crate) fn spawn<C>(
    _pool: Pool<ConnectionManager<C>>,
    _url: Option<String>,
    _stop: Arc<AtomicBool>,
) -> Option<JoinHandle<()>>
where
    C: OutboxConnection + R2D2Connection,
{
    None
}

/// Sleeps `delay`, waking early when `stop` is set.
#[cfg(feature = "postgres")]
fn sleep_unless_stopped(delay: Duration, stop: &AtomicBool) {
    let until = std::time::Instant::now() + delay;
    while !stop.load(Ordering::Relaxed) {
        let Some(left) = until.checked_duration_since(std::time::Instant::now()) else { return };
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(feature = "postgres")]
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200 << failures.min(5))
}

/// The `LISTEN` statement for the schema of the pool's connections.
#[cfg(feature = "postgres")]
fn listen_statement(pg: &mut diesel::PgConnection) -> diesel::QueryResult<String> {
    use diesel::prelude::*;

    #[derive(QueryableByName)]
    struct Schema {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        name: Option<String>,
    }

    let schema = diesel::sql_query("SELECT current_schema() AS name")
        .load::<Schema>(pg)?
        .into_iter()
        .next()
        .and_then(|s| s.name)
        .unwrap_or_else(|| "public".into());
    let channel = format!("outbox.{schema}").replace('"', "\"\"");
    Ok(format!("LISTEN \"{channel}\""))
}

/// The polling listener on a pooled connection.
#[cfg(feature = "postgres")]
fn run<C>(pool: &Pool<ConnectionManager<C>>, stop: &AtomicBool)
where
    C: OutboxConnection + R2D2Connection,
{
    use diesel::connection::SimpleConnection;

    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "outbox LISTEN: no connection; retrying");
                sleep_unless_stopped(backoff(failures), stop);
                continue;
            }
        };
        #[allow(irrefutable_let_patterns)]
        let crate::DbConn::Pg(pg) = conn.db() else {
            return;
        };
        let listened = listen_statement(pg).and_then(|listen| pg.batch_execute(&listen));
        if let Err(e) = listened {
            failures = failures.saturating_add(1);
            tracing::warn!(error = %e, "outbox LISTEN failed; retrying");
            sleep_unless_stopped(backoff(failures), stop);
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

/// The blocking listener on a dedicated libpq connection.
#[cfg(all(feature = "postgres", unix))]
mod libpq {
    use std::ffi::{c_char, c_void, CStr, CString};
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use diesel::r2d2::{ConnectionManager, Pool, R2D2Connection};
    use pq_sys as pq;

    use super::{backoff, listen_statement, sleep_unless_stopped};
    use crate::backend::OutboxConnection;

    /// How long one wait on the socket lasts before `stop` is checked again.
    const WAIT: Duration = Duration::from_millis(100);

    /// Connection settings given before the URL, which overrides them.
    const DEFAULTS: [(&str, &str); 6] = [
        ("connect_timeout", "10"),
        ("keepalives", "1"),
        ("keepalives_idle", "30"),
        ("keepalives_interval", "10"),
        ("keepalives_count", "3"),
        ("fallback_application_name", "outbox-listen"),
    ];

    pub(super) fn run<C>(pool: &Pool<ConnectionManager<C>>, url: &str, stop: &AtomicBool)
    where
        C: OutboxConnection + R2D2Connection,
    {
        let mut failures = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let listened = listen_once(pool, url, stop, &mut failures);
            if let Err(e) = listened {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "outbox LISTEN: connection failed or lost; reconnecting");
                sleep_unless_stopped(backoff(failures), stop);
            }
        }
    }

    /// Connects, listens and waits for notifications until `stop` (`Ok`) or an
    /// error.
    fn listen_once<C>(
        pool: &Pool<ConnectionManager<C>>,
        url: &str,
        stop: &AtomicBool,
        failures: &mut u32,
    ) -> Result<(), String>
    where
        C: OutboxConnection + R2D2Connection,
    {
        let listen = {
            let mut conn = pool.get().map_err(|e| format!("no pooled connection: {e}"))?;
            #[allow(irrefutable_let_patterns)]
            let crate::DbConn::Pg(pg) = conn.db() else {
                return Err("not a PostgreSQL pool".into());
            };
            listen_statement(pg).map_err(|e| format!("reading the schema: {e}"))?
        };
        let mut conn = PqConn::connect(url)?;
        conn.exec(&listen)?;
        *failures = 0;
        tracing::debug!(statement = %listen, "outbox LISTEN: listening on a dedicated connection");
        // Rows may have committed while we were not listening.
        crate::wake::notify();
        while !stop.load(Ordering::Relaxed) {
            // Notifications may already be buffered (read during LISTEN, or by
            // the previous PQconsumeInput).
            if conn.take_notifications() > 0 {
                crate::wake::notify();
            }
            conn.wait_readable(WAIT)?;
            conn.consume_input()?;
        }
        Ok(())
    }

    /// An open libpq connection, finished on drop.
    struct PqConn(NonNull<pq::PGconn>);

    impl PqConn {
        fn connect(url: &str) -> Result<PqConn, String> {
            let url = CString::new(url).map_err(|_| "the listen URL contains a NUL byte".to_string())?;
            let mut keys: Vec<CString> = Vec::new();
            let mut values: Vec<CString> = Vec::new();
            for (key, value) in DEFAULTS {
                keys.push(CString::new(key).map_err(|e| e.to_string())?);
                values.push(CString::new(value).map_err(|e| e.to_string())?);
            }
            keys.push(c"dbname".to_owned());
            values.push(url);
            let mut key_ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
            let mut value_ptrs: Vec<*const c_char> = values.iter().map(|v| v.as_ptr()).collect();
            key_ptrs.push(std::ptr::null());
            value_ptrs.push(std::ptr::null());
            // SAFETY: both arrays are NULL-terminated, of equal length, and point
            // to NUL-terminated strings (`keys`, `values`) that outlive the call;
            // expand_dbname = 1 makes libpq parse the URL given as `dbname`.
            let raw = unsafe { pq::PQconnectdbParams(key_ptrs.as_ptr(), value_ptrs.as_ptr(), 1) };
            let conn = PqConn(NonNull::new(raw).ok_or_else(|| "libpq could not allocate a connection".to_string())?);
            // SAFETY: `conn` holds a live PGconn.
            let status = unsafe { pq::PQstatus(conn.0.as_ptr()) };
            if status != pq::ConnStatusType::CONNECTION_OK {
                return Err(format!("connecting: {}", conn.error_message()));
            }
            // SAFETY: `conn` holds a live PGconn; `log_notice` has the
            // PQnoticeProcessor signature and ignores its (null) argument.
            unsafe { pq::PQsetNoticeProcessor(conn.0.as_ptr(), Some(log_notice), std::ptr::null_mut()) };
            Ok(conn)
        }

        /// libpq's last error on this connection.
        fn error_message(&self) -> String {
            // SAFETY: `self` holds a live PGconn; the returned string belongs to
            // it and stays valid until the next libpq call on it: copied at once.
            unsafe {
                let message = pq::PQerrorMessage(self.0.as_ptr());
                if message.is_null() {
                    return "unknown libpq error".into();
                }
                CStr::from_ptr(message).to_string_lossy().trim_end().to_owned()
            }
        }

        /// Runs a statement that returns no rows.
        fn exec(&mut self, sql: &str) -> Result<(), String> {
            let sql = CString::new(sql).map_err(|_| "the statement contains a NUL byte".to_string())?;
            // SAFETY: `self` holds a live PGconn used by this thread only
            // (`&mut self`); `sql` is NUL-terminated and outlives the call.
            let result = unsafe { pq::PQexec(self.0.as_ptr(), sql.as_ptr()) };
            let Some(result) = NonNull::new(result) else {
                return Err(format!("{}: {}", sql.to_string_lossy(), self.error_message()));
            };
            // SAFETY: `result` is a live PGresult of ours; cleared once, below.
            let status = unsafe { pq::PQresultStatus(result.as_ptr()) };
            // SAFETY: as above; nothing uses `result` afterwards.
            unsafe { pq::PQclear(result.as_ptr()) };
            if status == pq::ExecStatusType::PGRES_COMMAND_OK {
                Ok(())
            } else {
                Err(format!("{}: {}", sql.to_string_lossy(), self.error_message()))
            }
        }

        /// Waits until the socket is readable (or closed), at most `timeout`.
        fn wait_readable(&mut self, timeout: Duration) -> Result<(), String> {
            // SAFETY: `self` holds a live PGconn.
            let fd = unsafe { pq::PQsocket(self.0.as_ptr()) };
            if fd < 0 {
                return Err("the connection has no socket".into());
            }
            let mut pollfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: `pollfd` is one valid, exclusively borrowed pollfd; `fd`
            // is the connection's open socket, which libpq keeps open while
            // `self` lives.
            let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("poll: {e}"));
                }
            } else if ready > 0 && pollfd.revents & libc::POLLNVAL != 0 {
                return Err("the connection's socket is closed".into());
            }
            // Readable, hung up or failed: PQconsumeInput tells which.
            Ok(())
        }

        /// Reads what the socket holds (never blocks: libpq's sockets are non-blocking).
        fn consume_input(&mut self) -> Result<(), String> {
            // SAFETY: `self` holds a live PGconn used by this thread only.
            let ok = unsafe { pq::PQconsumeInput(self.0.as_ptr()) };
            // SAFETY: as above.
            let status = unsafe { pq::PQstatus(self.0.as_ptr()) };
            if ok == 0 || status != pq::ConnStatusType::CONNECTION_OK {
                return Err(self.error_message());
            }
            Ok(())
        }

        /// Frees the notifications read so far; returns how many there were.
        fn take_notifications(&mut self) -> usize {
            let mut n = 0;
            loop {
                // SAFETY: `self` holds a live PGconn used by this thread only.
                let notify = unsafe { pq::PQnotifies(self.0.as_ptr()) };
                if notify.is_null() {
                    return n;
                }
                n += 1;
                // SAFETY: PQnotifies hands over a PGnotify allocated by libpq,
                // freed once here and not used afterwards.
                unsafe { pq::PQfreemem(notify.cast::<c_void>()) };
            }
        }
    }

    impl Drop for PqConn {
        fn drop(&mut self) {
            // SAFETY: the PGconn is live and finished exactly once, here.
            unsafe { pq::PQfinish(self.0.as_ptr()) };
        }
    }

    // SAFETY: a PGconn may move between threads when used by one at a time;
    // `PqConn` is only used through `&mut self` or by its owner.
    unsafe impl Send for PqConn {}

    /// Routes server notices to tracing instead of libpq's stderr default.
    unsafe extern "C" fn log_notice(_arg: *mut c_void, message: *const c_char) {
        if message.is_null() {
            return;
        }
        // SAFETY: libpq passes a NUL-terminated message valid during the call.
        let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        let _ =
            std::panic::catch_unwind(|| tracing::debug!(notice = %message.trim_end(), "outbox LISTEN: server notice"));
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn url() -> String {
            std::env::var("OUTBOX_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
        }

        /// No server: a failure in CI, a loud skip elsewhere (as `TestDb::postgres`).
        fn skip() {
            assert!(std::env::var_os("CI").is_none(), "PostgreSQL is mandatory in CI but {} is unreachable", url());
            eprintln!("\n*** SKIPPED: no PostgreSQL at {}; start it or set OUTBOX_TEST_DATABASE_URL ***\n", url());
        }

        #[test]
        fn a_notify_reaches_a_blocked_listener_and_a_lost_connection_errors() {
            // Its own application name: the other test terminates `outbox-listen` connections.
            let separator = if url().contains('?') { '&' } else { '?' };
            let Ok(mut listener) = PqConn::connect(&format!("{}{separator}application_name=listen_unit", url())) else {
                return skip();
            };
            let mut sender = PqConn::connect(&url()).expect("second connection");
            listener.exec("LISTEN \"outbox.listen_unit\"").expect("LISTEN");
            let waiter = std::thread::spawn(move || {
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    listener.wait_readable(Duration::from_secs(1)).expect("wait");
                    listener.consume_input().expect("consume");
                    if listener.take_notifications() > 0 {
                        return (true, listener);
                    }
                }
                (false, listener)
            });
            std::thread::sleep(Duration::from_millis(100));
            sender.exec("NOTIFY \"outbox.listen_unit\"").expect("NOTIFY");
            let (notified, mut listener) = waiter.join().expect("waiter");
            assert!(notified, "the listener was notified");

            // SAFETY: `listener` holds a live PGconn.
            let pid = unsafe { pq::PQbackendPID(listener.0.as_ptr()) };
            sender.exec(&format!("DO $$ BEGIN PERFORM pg_terminate_backend({pid}); END $$")).expect("terminate");
            let start = std::time::Instant::now();
            let lost = loop {
                if start.elapsed() > Duration::from_secs(5) {
                    break false;
                }
                if listener.wait_readable(Duration::from_millis(200)).and_then(|()| listener.consume_input()).is_err() {
                    break true;
                }
            };
            assert!(lost, "a terminated connection is reported");
            assert!(PqConn::connect("postgres://nobody@127.0.0.1:1/none").is_err());
            assert!(PqConn::connect("postgres://a\0b").is_err());
        }

        #[test]
        fn the_listener_wakes_workers_reconnects_and_stops() {
            use diesel::connection::SimpleConnection;
            use std::sync::Arc;

            let pool = Pool::builder()
                .max_size(2)
                .connection_timeout(Duration::from_secs(2))
                .build(ConnectionManager::<diesel::PgConnection>::new(url()));
            let Ok(pool) = pool else {
                return skip();
            };
            let stop = Arc::new(AtomicBool::new(false));
            let epoch = crate::wake::epoch();
            let thread = super::super::spawn(pool.clone(), Some(url()), stop.clone()).expect("a listener");
            assert!(crate::wake::wait(epoch, Duration::from_secs(5)), "a wake-up once listening");
            std::thread::sleep(Duration::from_millis(200));

            let mut conn = pool.get().expect("a connection");
            let listen = listen_statement(&mut conn).expect("the schema");
            let notify = listen.replacen("LISTEN", "NOTIFY", 1);
            let epoch = crate::wake::epoch();
            let start = std::time::Instant::now();
            conn.batch_execute(&notify).expect("NOTIFY");
            assert!(crate::wake::wait(epoch, Duration::from_secs(2)), "woken by NOTIFY");
            eprintln!("NOTIFY to wake-up: {:?}", start.elapsed());

            let epoch = crate::wake::epoch();
            conn.batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'outbox-listen' AND query LIKE 'LISTEN%'",
            )
            .expect("terminate the listener");
            assert!(crate::wake::wait(epoch, Duration::from_secs(5)), "a wake-up after reconnecting");
            std::thread::sleep(Duration::from_millis(200));
            let epoch = crate::wake::epoch();
            conn.batch_execute(&notify).expect("NOTIFY");
            assert!(crate::wake::wait(epoch, Duration::from_secs(2)), "woken by NOTIFY after reconnecting");

            stop.store(true, Ordering::Relaxed);
            let start = std::time::Instant::now();
            thread.join().expect("the listener exits");
            // A liveness bound, not a timing: it checks `stop` after every 100 ms wait.
            assert!(start.elapsed() < Duration::from_secs(5), "stops within a wait");
        }
    }
}
