//! The outbox quickstart: SQLite in a temporary file, no set-up.
//!
//! Declares scopes and categories, saves, updates and deletes a few models in
//! transactions that also write outbox rows, writes an audit-log style message,
//! and prints the outbox rows written.
//!
//! Run it with `cargo run --example quickstart`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use outbox::prelude::*;
use serde_json::Value;

// 1. Scopes decide how rows are sharded; every category belongs to one.
#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
    #[scope(id = 1)]
    User,
    #[scope(id = 3)]
    AuditLog,
}

// 2. One table of contents for every kind of outbox message in the application.
#[outbox_category]
pub enum Category {
    #[category(id = 0, scope = Scope::User)]
    UserUpdate,
    #[category(id = 2, scope = Scope::Organization)]
    TeamUpdate,
    #[category(id = 5, scope = Scope::AuditLog, region = record_audit_event)]
    AuditLogEvent,
    #[category(id = 4, retired)]
    OrganizationMemberTeamUpdate,
}

diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }
diesel::table! { users (id) { id -> BigInt, email -> Text } }

// 3. A region model: every save, update and delete writes a region outbox row.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel)]
#[diesel(table_name = teams)]
#[outbox(category = Category::TeamUpdate, shard = organization_id, payload = deletion_payload)]
pub struct Team {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
}

impl Team {
    /// What the deletion receiver needs once the row is gone.
    fn deletion_payload(&self) -> Value {
        serde_json::json!({ "name": self.name })
    }
}

// 4. What happens when a worker delivers the team's outbox rows.
impl RegionReplication for Team {
    fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
        println!("  replicate team {} ({:?})", self.id, self.name);
        Ok(())
    }

    fn handle_async_deletion(
        _cx: &mut Delivery<'_>,
        id: i64,
        organization_id: i64,
        payload: Option<&Value>,
    ) -> Result<(), ReceiverError> {
        println!("  team {id} of organization {organization_id} is gone (last payload {payload:?})");
        Ok(())
    }
}

// 5. A control model: one control outbox row per region the user belongs to.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedControlModel)]
#[diesel(table_name = users)]
#[outbox(category = Category::UserUpdate, shard = id, regions = regions)]
pub struct User {
    pub id: i64,
    pub email: String,
}

impl User {
    fn regions(&self) -> Vec<&'static str> {
        vec!["us", "de"]
    }
}

impl ControlReplication for User {
    fn handle_async_replication(&self, cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
        println!("  replicate user {} to region {}", self.id, cx.region_name());
        Ok(())
    }

    fn handle_async_deletion(
        cx: &mut ControlDelivery<'_>,
        id: i64,
        _shard: i64,
        _payload: Option<&Value>,
    ) -> Result<(), ReceiverError> {
        println!("  user {id} deleted; tell region {}", cx.region_name());
        Ok(())
    }
}

/// The receiver of audit-log events (a payload-only category).
fn record_audit_event(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    println!("  audit event {}", cx.message().payload.clone().unwrap_or_default());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every live category has a receiver: check it at start-up.
    outbox::registry().validate()?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("quickstart.sqlite3");
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
    outbox::sqlite_pragmas(&mut conn)?;
    outbox::migrate(&mut conn)?;
    conn.batch_execute(
        "CREATE TABLE teams (id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, name TEXT NOT NULL);
         CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL);",
    )?;

    // Each hook opens its own transaction, or joins the caller's.
    let mut core = Team { id: 1, organization_id: 100, name: "core".into() };
    core.save(&mut conn)?;
    core.name = "core platform".into();
    core.update(&mut conn)?;
    Team::bulk_create(
        &mut conn,
        &[
            Team { id: 2, organization_id: 100, name: "web".into() },
            Team { id: 3, organization_id: 200, name: "data".into() },
        ],
    )?;

    // `outbox::transaction` is Sentry's `outbox_context`: the model change, its
    // outbox rows and the audit event commit together, or not at all.
    outbox::transaction(&mut conn, |conn| {
        core.delete(conn)?;
        User { id: 7, email: "ada@example.com".into() }.save(conn)?;
        outbox::write_region_message(
            conn,
            Scope::AuditLog,
            Category::AuditLogEvent,
            100,
            Some(serde_json::json!({ "event": "team.delete", "team": 1 })),
        )?;
        Ok::<_, outbox::Error>(())
    })?;

    let rows = outbox::pending_rows(&mut conn)?;
    println!("outbox rows written to {}:\n", path.display());
    println!(
        "{:<8} {:>3}  {:<12} {:>5}  {:<7} {:<14} {:>6}  payload",
        "outbox", "id", "scope", "shard", "region", "category", "object"
    );
    let registry = outbox::registry();
    for row in &rows {
        let scope = registry.scope(row.shard_scope).map_or("?", |s| s.name);
        let category = registry.category(row.category).map_or("?", |c| c.name);
        let payload = row.payload.as_ref().map_or_else(|| "-".to_string(), Value::to_string);
        println!(
            "{:<8} {:>3}  {:<12} {:>5}  {:<7} {:<14} {:>6}  {}",
            row.direction.as_str(),
            row.id,
            scope,
            row.shard_identifier,
            row.region_name.as_deref().unwrap_or("-"),
            category,
            row.object_identifier,
            payload
        );
    }
    println!("\n{} rows, each committed in the same transaction as its change.", rows.len());

    // 6. A worker drains them: per shard in order, coalescing the three changes of
    //    team 1 into one delivery of its newest state (here: its deletion).
    drop(conn);
    let pool = diesel::r2d2::Pool::builder()
        .max_size(2)
        .connection_customizer(Box::new(outbox::SqlitePragmas))
        .build(diesel::r2d2::ConnectionManager::<SqliteConnection>::new(path.to_string_lossy()))?;
    println!("\ndelivering:");
    let report = outbox::worker::Worker::builder(pool.clone()).build()?.run_until_idle()?;
    println!(
        "\n{} deliveries for {} rows ({} coalesced); {} rows left.",
        report.delivered,
        report.rows_deleted,
        report.coalesced,
        outbox::pending_rows(&mut pool.get()?)?.len()
    );
    Ok(())
}
