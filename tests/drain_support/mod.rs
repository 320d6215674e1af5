//! Shared by the drain engine's test binaries: registration without the macros,
//! pools per backend, and a recorder receivers write to.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{PgConnection, SqliteConnection};
use outbox::testing::TestDb;

/// Declares a scope: `scope!(NAME, id)`.
#[macro_export]
macro_rules! scope {
    ($name:ident, $id:expr) => {
        pub static $name: outbox::__private::ScopeInfo =
            outbox::__private::ScopeInfo { id: $id, name: stringify!($name), declared_in: module_path!() };
        outbox::__private::inventory::submit! { outbox::__private::ScopeRegistration(&$name) }
    };
}

/// Declares a category: `category!(NAME, id, SCOPE, { field: value, .. })`, the
/// extra fields overriding CategoryInfo defaults (discard, transactional, max_attempts, on_poison).
#[macro_export]
macro_rules! category {
    ($name:ident, $id:expr, $scope:ident $(, $field:ident : $value:expr)* ) => {
        pub static $name: outbox::__private::CategoryInfo = outbox::__private::CategoryInfo {
            $($field: $value,)*
            ..$crate::drain_support::base_category($id, stringify!($name), &$scope)
        };
        outbox::__private::inventory::submit! { outbox::__private::CategoryRegistration(&$name) }
    };
}

/// Registers a region receiver: `region_receiver!(category_id, function)`.
#[macro_export]
macro_rules! region_receiver {
    ($id:expr, $f:path) => {
        outbox::__private::inventory::submit! {
            outbox::__private::ReceiverRegistration {
                category: $id,
                receiver: outbox::__private::Receiver::Region($f),
                name: stringify!($f),
                registered_in: module_path!(),
            }
        }
    };
}

/// Registers a control receiver.
#[macro_export]
macro_rules! control_receiver {
    ($id:expr, $f:path) => {
        outbox::__private::inventory::submit! {
            outbox::__private::ReceiverRegistration {
                category: $id,
                receiver: outbox::__private::Receiver::Control($f),
                name: stringify!($f),
                registered_in: module_path!(),
            }
        }
    };
}

pub const fn base_category(id: i32, name: &'static str, scope: &'static outbox::ScopeInfo) -> outbox::CategoryInfo {
    outbox::CategoryInfo {
        id,
        name,
        scope: Some(scope),
        retired: false,
        discard: false,
        transactional: false,
        max_attempts: None,
        on_poison: outbox::PoisonPolicy::Block,
        declared_in: "tests",
    }
}

/// A pool of either backend, so tests can be written once.
#[derive(Clone)]
pub enum AnyPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Pg(Pool<ConnectionManager<PgConnection>>),
}

pub fn pool(db: &TestDb, size: u32) -> AnyPool {
    let pool = match db.backend() {
        outbox::Backend::Sqlite => AnyPool::Sqlite(db.sqlite_pool(size)),
        outbox::Backend::Postgres => AnyPool::Pg(db.pg_pool(size)),
    };
    match &pool {
        AnyPool::Sqlite(p) => outbox::migrate(&mut p.get().expect("connection")).expect("migrate"),
        AnyPool::Pg(p) => outbox::migrate(&mut p.get().expect("connection")).expect("migrate"),
    }
    pool
}

/// Calls a generic function with the concrete pool: `dispatch!(&pool, |p| scenario(p))`.
#[macro_export]
macro_rules! dispatch {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::drain_support::AnyPool::Sqlite($p) => $body,
            $crate::drain_support::AnyPool::Pg($p) => $body,
        }
    };
}

/// Serializes tests of one binary that share global receiver state.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}
