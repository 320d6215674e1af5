//! Shared by the integration tests: run a body once per available backend.
#![allow(dead_code)]

pub use outbox::testing::TestDb;

/// Runs `$body` with `$conn` bound to a migrated connection of each backend
/// (SQLite always; PostgreSQL when reachable, mandatory in CI), each in its own
/// database. `$db` names the `TestDb`.
#[macro_export]
macro_rules! on_each_backend {
    (|$db:ident, $conn:ident| $body:block) => {{
        for $db in $crate::common::TestDb::all() {
            match $db.backend() {
                outbox::Backend::Sqlite => {
                    let mut $conn = $db.sqlite_connection();
                    outbox::migrate(&mut $conn).expect("migrate");
                    $body
                }
                outbox::Backend::Postgres => {
                    let mut $conn = $db.pg_connection();
                    outbox::migrate(&mut $conn).expect("migrate");
                    $body
                }
            }
        }
    }};
}
