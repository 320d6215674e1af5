//! The write path on SQLite and PostgreSQL: what save, update, delete and the bulk
//! operations write, in which transaction, and what bad input does.

mod common;

use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use outbox::prelude::*;
use outbox::{Direction, OutboxConnection, StoredRow};

mod tables {
    diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }
    diesel::table! { projects (id) { id -> Integer, organization_id -> Integer, slug -> Text } }
    diesel::table! { users (id) { id -> BigInt, name -> Text, regions -> Text } }
    diesel::table! { widgets (id) { id -> BigInt, owner -> BigInt } }
}

/// Scopes and categories live in their own module, as in an application.
mod declarations {
    use outbox::prelude::*;

    #[outbox_scope]
    pub enum Scope {
        #[scope(id = 0)]
        Organization,
        #[scope(id = 1)]
        User,
        #[scope(id = 3)]
        AuditLog,
    }

    #[outbox_category]
    pub enum Category {
        #[category(id = 0, scope = Scope::User)]
        UserUpdate,
        #[category(id = 2, scope = Scope::Organization)]
        TeamUpdate,
        #[category(id = 3, scope = Scope::Organization)]
        ProjectUpdate,
        #[category(id = 5, scope = Scope::AuditLog, discard)]
        AuditLogEvent,
        #[category(id = 6, scope = Scope::User)]
        WidgetUpdate,
        #[category(id = 4, retired)]
        OrganizationMemberTeamUpdate,
    }
}

/// Models in a module other than the declarations, with i64 and i32 ids.
mod models {
    use super::declarations::Category;
    use super::tables::*;
    use diesel::prelude::*;
    use outbox::prelude::*;
    use serde_json::Value;

    #[derive(
        Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel,
    )]
    #[diesel(table_name = teams)]
    #[outbox(category = Category::TeamUpdate, shard = organization_id, payload = outbox_payload)]
    pub struct Team {
        pub id: i64,
        pub organization_id: i64,
        pub name: String,
    }

    impl Team {
        fn outbox_payload(&self) -> Value {
            serde_json::json!({ "name": self.name })
        }
    }

    impl RegionReplication for Team {
        fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
            Ok(())
        }
        fn handle_async_deletion(_: &mut Delivery<'_>, _: i64, _: i64, _: Option<&Value>) -> Result<(), ReceiverError> {
            Ok(())
        }
    }

    #[derive(
        Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel,
    )]
    #[diesel(table_name = projects)]
    #[outbox(category = Category::ProjectUpdate, shard = organization_id)]
    pub struct Project {
        pub id: i32,
        pub organization_id: i32,
        pub slug: String,
    }

    impl RegionReplication for Project {
        fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
            Ok(())
        }
        fn handle_async_deletion(_: &mut Delivery<'_>, _: i64, _: i64, _: Option<&Value>) -> Result<(), ReceiverError> {
            Ok(())
        }
    }

    /// A control model: one row per region listed in `regions` (comma-separated).
    #[derive(
        Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedControlModel,
    )]
    #[diesel(table_name = users)]
    #[outbox(category = Category::UserUpdate, shard = id, regions = region_names)]
    pub struct User {
        pub id: i64,
        pub name: String,
        pub regions: String,
    }

    impl User {
        fn region_names(&self) -> Vec<String> {
            self.regions.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect()
        }
    }

    impl ControlReplication for User {
        fn handle_async_replication(&self, _cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
            Ok(())
        }
        fn handle_async_deletion(
            _: &mut ControlDelivery<'_>,
            _: i64,
            _: i64,
            _: Option<&Value>,
        ) -> Result<(), ReceiverError> {
            Ok(())
        }
    }

    /// A payload that cannot serialize: JSON object keys must be strings.
    #[derive(
        Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel,
    )]
    #[diesel(table_name = widgets)]
    #[outbox(category = Category::WidgetUpdate, shard = owner, payload = broken_payload)]
    pub struct Widget {
        pub id: i64,
        pub owner: i64,
    }

    impl Widget {
        fn broken_payload(&self) -> std::collections::HashMap<(i64, i64), i64> {
            [((self.id, self.owner), 1)].into_iter().collect()
        }
    }

    impl RegionReplication for Widget {
        fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
            Ok(())
        }
        fn handle_async_deletion(_: &mut Delivery<'_>, _: i64, _: i64, _: Option<&Value>) -> Result<(), ReceiverError> {
            Ok(())
        }
    }
}

use declarations::{Category, Scope};
use models::{Project, Team, User, Widget};

const MODEL_TABLES: &str = "
    CREATE TABLE teams (id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE projects (id INTEGER PRIMARY KEY, organization_id INTEGER NOT NULL, slug TEXT NOT NULL);
    CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, regions TEXT NOT NULL);
    CREATE TABLE widgets (id BIGINT PRIMARY KEY, owner BIGINT NOT NULL);
";

fn setup<C: OutboxConnection>(conn: &mut C) {
    conn.batch_execute(MODEL_TABLES).expect("create model tables");
}

fn rows<C: OutboxConnection>(conn: &mut C) -> Vec<StoredRow> {
    outbox::pending_rows(conn).expect("read outbox rows")
}

fn team(id: i64, org: i64, name: &str) -> Team {
    Team { id, organization_id: org, name: name.to_string() }
}

/// Records every SQL statement a connection runs.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    fn install<C: Connection>(&self, conn: &mut C) {
        let log = self.0.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                log.lock().unwrap().push(query.to_string());
            }
        });
    }

    /// Statements that run `verb` on `table`, whatever the backend's quoting.
    fn count(&self, verb: &str, table: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|q| q.contains(verb) && q.contains(table)).count()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

fn _assert_instrumentation<T: Instrumentation>() {}

#[test]
fn save_update_delete_write_one_row_each_with_model_fields() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let before = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(5);
        let mut t = team(1, 10, "core");
        t.save(&mut conn).unwrap();
        t.name = "platform".into();
        t.update(&mut conn).unwrap();
        t.save(&mut conn).unwrap(); // save of an existing row updates it
        t.delete(&mut conn).unwrap();

        let written = rows(&mut conn);
        assert_eq!(written.len(), 4, "{}: {written:?}", db.name());
        for row in &written {
            assert_eq!(row.direction, Direction::Region);
            assert_eq!(row.shard_scope, Scope::Organization.id());
            assert_eq!(row.shard_identifier, 10);
            assert_eq!(row.category, Category::TeamUpdate.id());
            assert_eq!(row.object_identifier, 1);
            assert_eq!(row.region_name, None);
            assert_eq!(row.scheduled_for.to_string(), "2016-08-01 00:00:00", "due at once");
            assert_eq!(row.scheduled_from, row.date_added);
            assert!(row.date_added > before, "date_added is now");
        }
        assert_eq!(written[0].payload, Some(serde_json::json!({"name": "core"})));
        // The delete's payload comes from the live row, written before it is deleted.
        assert_eq!(written[3].payload, Some(serde_json::json!({"name": "platform"})));
        assert!(written.windows(2).all(|w| w[0].id < w[1].id));
        let left: i64 = tables::teams::table.count().get_result(&mut conn).unwrap();
        assert_eq!(left, 0, "{}: the team is deleted", db.name());
    });
}

#[test]
fn update_of_a_missing_row_is_an_error_and_writes_nothing() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let err = team(404, 1, "ghost").update(&mut conn).unwrap_err();
        assert!(matches!(err, outbox::Error::NotFound { object: 404, .. }), "{}: {err}", db.name());
        assert!(err.to_string().contains("use save() to insert"));
        assert!(rows(&mut conn).is_empty());
    });
}

#[test]
fn i32_ids_are_widened_into_the_outbox() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let p = Project { id: 7, organization_id: 70, slug: "web".into() };
        p.save(&mut conn).unwrap();
        let written = rows(&mut conn);
        assert_eq!(written.len(), 1, "{}", db.name());
        assert_eq!((written[0].object_identifier, written[0].shard_identifier), (7, 70));
        assert_eq!(written[0].category, Category::ProjectUpdate.id());
        assert_eq!(written[0].payload, None, "no payload method, no payload");
    });
}

#[test]
fn bulk_operations_write_their_outbox_rows_with_one_statement() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let statements = Statements::default();
        statements.install(&mut conn);
        let teams: Vec<Team> = (1..=50).map(|i| team(i, i % 5, "t")).collect();

        Team::bulk_create(&mut conn, &teams).unwrap();
        assert_eq!(statements.count("INSERT INTO", "region_outbox"), 1, "{}: bulk_create", db.name());
        if db.backend() == outbox::Backend::Postgres {
            // On SQLite, Diesel inserts a batch of derived `Insertable`s row by row
            // (in one transaction); outbox's own rows always take one statement.
            assert_eq!(statements.count("INSERT INTO", "teams"), 1, "{}: models in one statement", db.name());
        }
        statements.clear();

        let renamed: Vec<Team> = teams.iter().map(|t| team(t.id, t.organization_id, "renamed")).collect();
        Team::bulk_update(&mut conn, &renamed).unwrap();
        assert_eq!(statements.count("INSERT INTO", "region_outbox"), 1, "{}: bulk_update", db.name());
        statements.clear();

        Team::bulk_delete(&mut conn, &renamed[..20]).unwrap();
        assert_eq!(statements.count("INSERT INTO", "region_outbox"), 1, "{}: bulk_delete", db.name());
        assert_eq!(statements.count("DELETE FROM", "teams"), 1, "{}: models in one statement", db.name());

        let written = rows(&mut conn);
        assert_eq!(written.len(), 120);
        let objects: Vec<i64> = written[..50].iter().map(|r| r.object_identifier).collect();
        assert_eq!(objects, (1..=50).collect::<Vec<_>>());
        assert!(written.iter().all(|r| r.shard_identifier == r.object_identifier % 5));
        assert_eq!(written[60].payload, Some(serde_json::json!({"name": "renamed"})));
        let left: i64 = tables::teams::table.count().get_result(&mut conn).unwrap();
        assert_eq!(left, 30);
    });
}

#[test]
fn rollback_leaves_neither_the_model_nor_the_outbox_row() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let result: Result<(), outbox::Error> = outbox::transaction(&mut conn, |conn| {
            team(1, 1, "a").save(conn)?;
            Team::bulk_create(conn, &[team(2, 1, "b"), team(3, 1, "c")])?;
            assert_eq!(outbox::pending_shards().len(), 1, "the shard is recorded for the flush");
            Err(outbox::Error::Migration("abort on purpose".into()))
        });
        assert!(result.is_err());
        assert!(rows(&mut conn).is_empty(), "{}: no outbox row survives the rollback", db.name());
        let left: i64 = tables::teams::table.count().get_result(&mut conn).unwrap();
        assert_eq!(left, 0, "{}: no model row survives the rollback", db.name());

        // A hook inside the caller's own Diesel transaction joins it (a savepoint).
        let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
            team(4, 1, "d").save(conn).unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(rows(&mut conn).is_empty(), "{}: joined the outer transaction", db.name());

        // And a committed transaction keeps both.
        outbox::transaction(&mut conn, |conn| team(5, 1, "e").save(conn)).unwrap();
        assert_eq!(rows(&mut conn).len(), 1);
    });
}

#[test]
fn control_models_fan_out_one_row_per_region() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let user = User { id: 42, name: "ada".into(), regions: "us,de,jp".into() };
        user.save(&mut conn).unwrap();
        let written = rows(&mut conn);
        assert_eq!(written.len(), 3, "{}", db.name());
        let regions: Vec<_> = written.iter().map(|r| r.region_name.clone().unwrap()).collect();
        assert_eq!(regions, ["us", "de", "jp"]);
        for row in &written {
            assert_eq!(row.direction, Direction::Control);
            assert_eq!((row.shard_scope, row.shard_identifier, row.object_identifier), (Scope::User.id(), 42, 42));
            assert_eq!(row.category, Category::UserUpdate.id());
        }

        let nowhere = User { id: 43, name: "bob".into(), regions: String::new() };
        let err = nowhere.save(&mut conn).unwrap_err();
        assert!(matches!(err, outbox::Error::NoRegions { object: 43, .. }), "{err}");
        let saved: i64 = tables::users::table.count().get_result(&mut conn).unwrap();
        assert_eq!(saved, 1, "{}: nothing written for a user with no region", db.name());
    });
}

#[test]
fn manual_writes_never_share_object_identifiers() {
    on_each_backend!(|db, conn| {
        let payload = serde_json::json!({"event": "member.invite"});
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(
                outbox::write_region_message(
                    &mut conn,
                    Scope::AuditLog,
                    Category::AuditLogEvent,
                    9,
                    Some(payload.clone()),
                )
                .unwrap(),
            );
        }
        ids.extend(
            outbox::write_control_message(&mut conn, Scope::AuditLog, Category::AuditLogEvent, 9, None, ["us", "de"])
                .unwrap(),
        );
        let written = rows(&mut conn);
        assert_eq!(written.len(), 22, "{}", db.name());
        let objects: Vec<i64> = written.iter().map(|r| r.object_identifier).collect();
        assert_eq!(objects, ids, "the identifiers returned are the ones stored");
        // Coalescing groups never span the two outbox tables, so identifiers are
        // unique per table.
        for direction in [Direction::Region, Direction::Control] {
            let mut mine: Vec<i64> =
                written.iter().filter(|r| r.direction == direction).map(|r| r.object_identifier).collect();
            let n = mine.len();
            mine.sort_unstable();
            mine.dedup();
            assert_eq!(mine.len(), n, "{}: every {direction} manual row has its own object identifier", db.name());
        }
        assert!(written.iter().all(|r| r.shard_scope == Scope::AuditLog.id() && r.shard_identifier == 9));
    });
}

#[test]
fn a_category_written_in_another_scope_is_rejected() {
    on_each_backend!(|db, conn| {
        let err = outbox::write_region_message(&mut conn, Scope::User, Category::AuditLogEvent, 1, None).unwrap_err();
        assert!(matches!(
            err,
            outbox::Error::ScopeMismatch { category: "AuditLogEvent", expected: "AuditLog", given: "User" }
        ));
        assert_eq!(
            err.to_string(),
            "category `AuditLogEvent` belongs to scope `AuditLog`, not `User`; write it with its own scope"
        );
        let retired = outbox::write_region_message(
            &mut conn,
            Scope::Organization,
            Category::OrganizationMemberTeamUpdate,
            1,
            None,
        )
        .unwrap_err();
        assert!(matches!(retired, outbox::Error::Retired("OrganizationMemberTeamUpdate")), "{retired}");
        assert!(rows(&mut conn).is_empty(), "{}: nothing written", db.name());
    });
}

#[test]
fn bad_input_is_an_error_value_and_writes_nothing() {
    on_each_backend!(|db, conn| {
        setup(&mut conn);
        let err = Widget { id: 1, owner: 2 }.save(&mut conn).unwrap_err();
        assert!(matches!(err, outbox::Error::Payload { category: "WidgetUpdate", .. }), "{err}");
        assert!(err.to_string().contains("does not serialize to JSON"), "{err}");

        let long = "r".repeat(49);
        let err = User { id: 1, name: "x".into(), regions: format!("us,{long}") }.save(&mut conn).unwrap_err();
        assert!(matches!(err, outbox::Error::RegionName { len: 49, max: 48, .. }), "{err}");

        let err = outbox::write_control_message(&mut conn, Scope::AuditLog, Category::AuditLogEvent, 1, None, [""])
            .unwrap_err();
        assert!(matches!(err, outbox::Error::RegionName { len: 0, .. }), "{err}");

        assert!(rows(&mut conn).is_empty(), "{}: no outbox row", db.name());
        let widgets: i64 = tables::widgets::table.count().get_result(&mut conn).unwrap();
        let users: i64 = tables::users::table.count().get_result(&mut conn).unwrap();
        assert_eq!((widgets, users), (0, 0), "{}: no model row either", db.name());
    });
}

#[test]
fn identifiers_out_of_range_are_errors() {
    use outbox::__private::Identifier;
    let err = u64::MAX.to_outbox_id("object_identifier").unwrap_err();
    assert!(matches!(err, outbox::Error::IdOutOfRange { field: "object_identifier", .. }));
    assert_eq!(
        err.to_string(),
        "object_identifier = 18446744073709551615 does not fit a 64-bit signed outbox identifier"
    );
    assert_eq!(7u64.to_outbox_id("x").unwrap(), 7);
    assert_eq!((-3i32).to_outbox_id("x").unwrap(), -3);
}

#[test]
fn migrations_are_idempotent_and_the_sql_is_published() {
    on_each_backend!(|db, conn| {
        outbox::migrate(&mut conn).unwrap();
        outbox::migrate(&mut conn).unwrap();
        let sql = match db.backend() {
            outbox::Backend::Sqlite => outbox::migrations::SQLITE_UP,
            outbox::Backend::Postgres => outbox::migrations::POSTGRES_UP,
        };
        // The published SQL is re-runnable on top of `migrate` (IF NOT EXISTS everywhere).
        conn.batch_execute(sql).unwrap();
        assert!(rows(&mut conn).is_empty());
    });
}

#[test]
fn the_registry_of_this_binary_is_valid() {
    outbox::registry().validate().unwrap();
    let registry = outbox::registry();
    assert_eq!(registry.category(2).unwrap().name, "TeamUpdate");
    assert!(registry.receiver(2, Direction::Region).is_some(), "Team registered its receiver");
    assert!(registry.receiver(0, Direction::Control).is_some(), "User registered its receiver");
    assert!(registry.category(4).unwrap().retired);
}

/// A hook that commits on its own wakes this process's sleeping workers: no
/// `outbox::transaction` needed for a prompt delivery.
fn plain_save_wakes<C>(pool: diesel::r2d2::Pool<diesel::r2d2::ConnectionManager<C>>, name: &str)
where
    C: OutboxConnection + diesel::r2d2::R2D2Connection,
{
    pool.get().unwrap().batch_execute(MODEL_TABLES).unwrap();
    // A 10 s poll interval: only a wake-up can deliver within 2 s.
    let handle = outbox::Worker::builder(pool.clone())
        .poll_interval(std::time::Duration::from_secs(10))
        .listen(false)
        .build()
        .unwrap()
        .spawn();
    std::thread::sleep(std::time::Duration::from_millis(300));
    team(1, 1, "woken").save(&mut *pool.get().unwrap()).unwrap();
    let start = std::time::Instant::now();
    while !rows(&mut *pool.get().unwrap()).is_empty() && start.elapsed() < std::time::Duration::from_secs(2) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    handle.shutdown();
    assert!(rows(&mut *pool.get().unwrap()).is_empty(), "{name}: delivered well under the poll interval");
}

#[test]
fn a_committed_save_wakes_workers_of_this_process() {
    for db in common::TestDb::all() {
        match db.backend() {
            outbox::Backend::Sqlite => {
                let pool = db.sqlite_pool(3);
                outbox::migrate(&mut pool.get().unwrap()).unwrap();
                plain_save_wakes(pool, db.name());
            }
            outbox::Backend::Postgres => {
                let pool = db.pg_pool(3);
                outbox::migrate(&mut pool.get().unwrap()).unwrap();
                plain_save_wakes(pool, db.name());
            }
        }
    }
}
