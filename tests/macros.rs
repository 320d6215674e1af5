//! What the macros generate, seen from a user's crate: ids and infos, link-time
//! registration, and the model hooks writing the right outbox rows (SQLite).

use diesel::prelude::*;
use diesel::SqliteConnection;
use outbox::prelude::*;
use outbox::{Direction, OutboxModel, PoisonPolicy, StoredRow};

mod schema {
    diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }
    diesel::table! { users (id) { id -> Integer, name -> Text, home -> Text } }
}

#[outbox_scope]
pub enum Scope {
    /// Docs and other attributes on variants are kept.
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
    #[category(id = 5, scope = Scope::AuditLog, region = receivers::record_event, transactional, max_attempts = 3, on_poison = skip)]
    AuditLogEvent,
    #[category(id = 6, scope = Scope::Organization, control = receivers::ping)]
    ControlPing,
    #[category(id = 7, scope = Scope::Organization, discard)]
    Dropped,
    #[category(id = 4, retired)]
    OrganizationMemberTeamUpdate,
}

mod receivers {
    use outbox::prelude::*;

    pub fn record_event(_cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
        Ok(())
    }

    pub fn ping(cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
        let _ = cx.region_name();
        Ok(())
    }
}

/// Models live apart from the categories, as in an application.
mod models {
    use diesel::prelude::*;
    use outbox::prelude::*;
    use serde::Serialize;
    use serde_json::Value;

    // `users` is `User`'s table by Diesel's default naming.
    use crate::schema::{teams, users};
    use crate::Category;

    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, ReplicatedRegionModel)]
    #[diesel(table_name = teams)]
    #[outbox(category = Category::TeamUpdate, shard = organization_id, payload = outbox_payload, replication_version = 3)]
    pub struct Team {
        pub id: i64,
        pub organization_id: i64,
        pub name: String,
    }

    #[derive(Serialize)]
    pub struct TeamPayload<'a> {
        pub name: &'a str,
    }

    impl Team {
        fn outbox_payload(&self) -> TeamPayload<'_> {
            TeamPayload { name: &self.name }
        }
    }

    impl RegionReplication for Team {
        fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
            Ok(())
        }
        fn handle_async_deletion(
            _cx: &mut Delivery<'_>,
            _id: i64,
            _shard: i64,
            _payload: Option<&Value>,
        ) -> Result<(), ReceiverError> {
            Ok(())
        }
    }

    /// An `i32` key, a default table name, and two target regions.
    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, ReplicatedControlModel)]
    #[outbox(category = Category::UserUpdate, shard = id, regions = target_regions)]
    pub struct User {
        pub id: i32,
        pub name: String,
        pub home: String,
    }

    impl User {
        fn target_regions(&self) -> Vec<&str> {
            vec![self.home.as_str(), "eu"]
        }
    }

    impl ControlReplication for User {
        fn handle_async_replication(&self, _cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
            Ok(())
        }
        fn handle_async_deletion(
            _cx: &mut ControlDelivery<'_>,
            _id: i64,
            _shard: i64,
            _payload: Option<&Value>,
        ) -> Result<(), ReceiverError> {
            Ok(())
        }
    }
}

use models::{Team, User};

fn connect() -> (tempfile::TempDir, SqliteConnection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("macros.sqlite");
    let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8 path")).expect("open sqlite");
    outbox::migrate(&mut conn).expect("migrate");
    diesel::sql_query(
        "CREATE TABLE teams (id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, name TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .expect("teams");
    diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, home TEXT NOT NULL)")
        .execute(&mut conn)
        .expect("users");
    (dir, conn)
}

fn team(id: i64, org: i64, name: &str) -> Team {
    Team { id, organization_id: org, name: name.into() }
}

/// (category, shard, object, payload name) of each row, to compare briefly.
fn summary(rows: &[StoredRow]) -> Vec<(i32, i64, i64, Option<String>)> {
    rows.iter()
        .map(|r| {
            let name = r.payload.as_ref().and_then(|p| p["name"].as_str()).map(str::to_string);
            (r.category, r.shard_identifier, r.object_identifier, name)
        })
        .collect()
}

#[test]
fn scopes_have_their_ids_and_infos() {
    assert_eq!(Scope::Organization.id(), 0);
    assert_eq!(Scope::AuditLog as i32, 3);
    assert_eq!(OutboxScope::id(Scope::User), 1);
    assert_eq!(Scope::from_id(3), Some(Scope::AuditLog));
    assert_eq!(Scope::from_id(2), None);
    assert_eq!(Scope::ALL, &[Scope::Organization, Scope::User, Scope::AuditLog]);
    let info = Scope::User.info();
    assert_eq!((info.id, info.name, info.declared_in), (1, "User", module_path!()));
    assert_eq!(Scope::INFOS.len(), 3);
}

#[test]
fn categories_have_their_ids_scopes_and_flags() {
    assert_eq!(Category::TeamUpdate.id(), 2);
    assert_eq!(Category::from_id(5), Some(Category::AuditLogEvent));
    assert_eq!(Category::TeamUpdate.scope_id(), Some(0));
    assert_eq!(Category::AuditLogEvent.scope_id(), Some(3));

    let audit = Category::AuditLogEvent.info();
    assert_eq!((audit.name, audit.transactional, audit.max_attempts), ("AuditLogEvent", true, Some(3)));
    assert_eq!(audit.on_poison, PoisonPolicy::Skip);
    assert_eq!(Category::TeamUpdate.info().on_poison, PoisonPolicy::Block, "block is the default");
    assert_eq!(Category::TeamUpdate.info().max_attempts, None);

    let retired = Category::OrganizationMemberTeamUpdate.info();
    assert!(retired.retired && retired.scope.is_none());
    assert!(Category::OrganizationMemberTeamUpdate.__outbox_retired());
    assert!(!Category::TeamUpdate.__outbox_retired());
    assert!(Category::Dropped.info().discard && !Category::TeamUpdate.info().discard);
}

#[test]
fn registry_sees_scopes_categories_and_receivers() {
    let registry = outbox::registry();
    for scope in Scope::INFOS {
        assert!(registry.scopes().contains(&scope), "{scope:?} registered");
    }
    assert_eq!(registry.categories().len(), Category::ALL.len());
    let receivers: Vec<_> =
        registry.receivers().iter().map(|r| (r.category, r.direction(), r.name, r.registered_in)).collect();
    assert!(receivers.contains(&(5, Direction::Region, "receivers :: record_event", module_path!())), "{receivers:?}");
    assert!(receivers.contains(&(6, Direction::Control, "receivers :: ping", module_path!())));
    let models = concat!(module_path!(), "::models");
    assert!(receivers.contains(&(2, Direction::Region, "Team", models)));
    assert!(receivers.contains(&(0, Direction::Control, "User", models)));
    assert_eq!(receivers.len(), 4);
    registry.validate().expect("every live category has a receiver or is discard");
}

#[test]
fn model_constants() {
    assert_eq!(Team::outbox_category(), Category::TeamUpdate);
    assert_eq!((Team::DIRECTION, Team::MODEL_NAME, Team::TABLE_NAME), (Direction::Region, "Team", "teams"));
    assert_eq!(Team::REPLICATION_VERSION, 3);
    assert_eq!((User::DIRECTION, User::TABLE_NAME, User::REPLICATION_VERSION), (Direction::Control, "users", 1));
}

#[test]
fn region_model_hooks_write_outbox_rows() {
    let (_dir, mut conn) = connect();
    let t = team(1, 10, "core");
    t.save(&mut conn).unwrap();
    team(1, 10, "platform").save(&mut conn).unwrap(); // upsert: the row exists
    team(1, 10, "infra").update(&mut conn).unwrap();
    let rows = outbox::pending_rows(&mut conn).unwrap();
    assert!(rows.iter().all(|r| r.direction == Direction::Region && r.shard_scope == 0 && r.region_name.is_none()));
    assert_eq!(
        summary(&rows),
        vec![(2, 10, 1, Some("core".into())), (2, 10, 1, Some("platform".into())), (2, 10, 1, Some("infra".into()))]
    );
    let stored: Vec<Team> = schema::teams::table.load(&mut conn).unwrap();
    assert_eq!(stored, vec![team(1, 10, "infra")]);

    assert!(team(9, 10, "ghost").update(&mut conn).is_err(), "update of a missing row fails");
    assert_eq!(outbox::pending_rows(&mut conn).unwrap().len(), 3, "and writes nothing");

    team(1, 10, "infra").delete(&mut conn).unwrap();
    let rows = outbox::pending_rows(&mut conn).unwrap();
    assert_eq!(summary(&rows[3..]), vec![(2, 10, 1, Some("infra".into()))]);
    assert_eq!(schema::teams::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}

#[test]
fn region_model_bulk_hooks() {
    let (_dir, mut conn) = connect();
    let teams = vec![team(1, 10, "a"), team(2, 10, "b"), team(3, 20, "c")];
    Team::bulk_create(&mut conn, &teams).unwrap();
    let renamed: Vec<Team> = teams.iter().map(|t| Team { name: format!("{}2", t.name), ..t.clone() }).collect();
    Team::bulk_update(&mut conn, &renamed).unwrap();
    Team::bulk_delete(&mut conn, &renamed[..2]).unwrap();
    Team::bulk_create(&mut conn, &[]).unwrap();

    let rows = outbox::pending_rows(&mut conn).unwrap();
    let objects: Vec<(i64, i64)> = rows.iter().map(|r| (r.shard_identifier, r.object_identifier)).collect();
    assert_eq!(objects, vec![(10, 1), (10, 2), (20, 3), (10, 1), (10, 2), (20, 3), (10, 1), (10, 2)]);
    let left: Vec<Team> = schema::teams::table.load(&mut conn).unwrap();
    assert_eq!(left, vec![team(3, 20, "c2")]);
}

#[test]
fn generated_loaders_reload_by_id() {
    let (_dir, mut conn) = connect();
    Team::bulk_create(&mut conn, &[team(1, 10, "a"), team(2, 10, "b"), team(5, 10, "c")]).unwrap();
    use outbox::OutboxConnection;
    assert_eq!(Team::__outbox_load(2, conn.db()).unwrap(), Some(team(2, 10, "b")));
    assert_eq!(Team::__outbox_load(3, conn.db()).unwrap(), None);
    let batch = Team::__outbox_load_batch(1, 10, conn.db()).unwrap();
    assert_eq!(batch.iter().map(|t| t.id).collect::<Vec<_>>(), vec![2, 5]);
    assert_eq!(Team::__outbox_load_batch(-1, 2, conn.db()).unwrap().len(), 2);

    User { id: 7, name: "u".into(), home: "us".into() }.save(&mut conn).unwrap();
    assert_eq!(User::__outbox_load(7, conn.db()).unwrap().map(|u| u.id), Some(7));
    // An id the i32 key cannot hold names no row.
    assert_eq!(User::__outbox_load(i64::MAX, conn.db()).unwrap(), None);
    assert!(User::__outbox_load_batch(i64::MAX, 10, conn.db()).unwrap().is_empty());
    assert_eq!(User::__outbox_load_batch(i64::MIN, 10, conn.db()).unwrap().len(), 1);
}

#[test]
fn control_model_writes_one_row_per_region() {
    let (_dir, mut conn) = connect();
    let user = User { id: 7, name: "ana".into(), home: "us".into() };
    user.save(&mut conn).unwrap();
    User { name: "ana b".into(), ..user.clone() }.update(&mut conn).unwrap();
    user.delete(&mut conn).unwrap();
    let rows = outbox::pending_rows(&mut conn).unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!((r.direction, r.shard_scope, r.category), (Direction::Control, 1, 0));
        assert_eq!((r.shard_identifier, r.object_identifier, r.payload.as_ref()), (7, 7, None));
    }
    let mut regions: Vec<_> = rows.iter().filter_map(|r| r.region_name.as_deref()).collect();
    regions.sort_unstable();
    assert_eq!(regions, vec!["eu", "eu", "eu", "us", "us", "us"]);
    assert_eq!(schema::users::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}
