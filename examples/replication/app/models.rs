//! Scopes, categories, models and receivers of the demo.
//!
//! Region models (teams, organization members) replicate into control-side
//! mappings; control models (users, API tokens) fan out to the regions they
//! concern and replicate into region-side caches; audit-log events are a
//! payload-only category written in a region and recorded in control.
//!
//! Every receiver is idempotent (upserts, delete-if-exists, insert-or-ignore):
//! a message can be delivered more than once.

use std::collections::HashMap;

use diesel::prelude::*;
use outbox::prelude::*;
use serde_json::{json, Value};

use super::schema::*;
use super::silo::SiloPool;

#[outbox_scope]
pub enum Scope {
    /// Shard key: the organization id. Everything of one organization is delivered in order.
    #[scope(id = 0)]
    Organization,
    /// Shard key: the user id. Users and their tokens share it, so a token never
    /// overtakes the user change that gave it a region.
    #[scope(id = 1)]
    User,
    /// Audit events get a scope of their own: a failing audit receiver must not
    /// hold up team or member replication of the same organization.
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
    OrganizationMemberUpdate,
    /// Payload-only: every row has its own object id, so events never coalesce.
    #[category(id = 5, scope = Scope::AuditLog, region = record_audit_event)]
    AuditLogEvent,
    #[category(id = 6, scope = Scope::User)]
    ApiTokenUpdate,
    /// Retired: the id stays reserved, never reused.
    #[category(id = 4, retired)]
    OrganizationMemberTeamUpdate,
}

/// Worker resource of region workers: the control database.
pub struct ControlSilo(pub SiloPool);

/// Worker resource of region workers: which region this worker drains.
pub struct ThisRegion(pub String);

/// Worker resource of the control worker: every region database by name.
pub struct RegionSilos(pub HashMap<String, SiloPool>);

fn region_pool<'a>(cx: &ControlDelivery<'a>) -> Result<&'a SiloPool, ReceiverError> {
    let region = cx.region_name();
    cx.resource::<RegionSilos>()?
        .0
        .get(region)
        .ok_or_else(|| ReceiverError::msg(format!("no database for region `{region}`: pass it with --region")))
}

// ---------------------------------------------------------------- region models

#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel,
)]
#[diesel(table_name = teams)]
#[outbox(category = Category::TeamUpdate, shard = organization_id)]
pub struct Team {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
}

impl RegionReplication for Team {
    fn handle_async_replication(&self, cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
        let region = &cx.resource::<ThisRegion>()?.0;
        let row = (
            team_mapping::region_name.eq(region),
            team_mapping::team_id.eq(self.id),
            team_mapping::organization_id.eq(self.organization_id),
            team_mapping::name.eq(&self.name),
        );
        let changes = (team_mapping::organization_id.eq(self.organization_id), team_mapping::name.eq(&self.name));
        with_conn!(&cx.resource::<ControlSilo>()?.0, |c| diesel::insert_into(team_mapping::table)
            .values(row)
            .on_conflict((team_mapping::region_name, team_mapping::team_id))
            .do_update()
            .set(changes)
            .execute(c)?);
        Ok(())
    }

    fn handle_async_deletion(
        cx: &mut Delivery<'_>,
        id: i64,
        _org: i64,
        _: Option<&Value>,
    ) -> Result<(), ReceiverError> {
        let region = &cx.resource::<ThisRegion>()?.0;
        let target =
            team_mapping::table.filter(team_mapping::region_name.eq(region)).filter(team_mapping::team_id.eq(id));
        with_conn!(&cx.resource::<ControlSilo>()?.0, |c| diesel::delete(target).execute(c)?);
        Ok(())
    }
}

#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel,
)]
#[diesel(table_name = organization_members)]
#[outbox(category = Category::OrganizationMemberUpdate, shard = organization_id)]
pub struct OrganizationMember {
    pub id: i64,
    pub organization_id: i64,
    pub user_id: i64,
    pub role: String,
}

impl RegionReplication for OrganizationMember {
    fn handle_async_replication(&self, cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
        let region = &cx.resource::<ThisRegion>()?.0;
        let m = organization_member_mapping::table;
        let row = (
            organization_member_mapping::region_name.eq(region),
            organization_member_mapping::member_id.eq(self.id),
            organization_member_mapping::organization_id.eq(self.organization_id),
            organization_member_mapping::user_id.eq(self.user_id),
            organization_member_mapping::role.eq(&self.role),
        );
        let changes = (
            organization_member_mapping::organization_id.eq(self.organization_id),
            organization_member_mapping::user_id.eq(self.user_id),
            organization_member_mapping::role.eq(&self.role),
        );
        with_conn!(&cx.resource::<ControlSilo>()?.0, |c| diesel::insert_into(m)
            .values(row)
            .on_conflict((organization_member_mapping::region_name, organization_member_mapping::member_id))
            .do_update()
            .set(changes)
            .execute(c)?);
        Ok(())
    }

    fn handle_async_deletion(
        cx: &mut Delivery<'_>,
        id: i64,
        _org: i64,
        _: Option<&Value>,
    ) -> Result<(), ReceiverError> {
        let region = &cx.resource::<ThisRegion>()?.0;
        let target = organization_member_mapping::table
            .filter(organization_member_mapping::region_name.eq(region))
            .filter(organization_member_mapping::member_id.eq(id));
        with_conn!(&cx.resource::<ControlSilo>()?.0, |c| diesel::delete(target).execute(c)?);
        Ok(())
    }
}

// ------------------------------------------------------ payload-only audit events

/// An audit event: the region keeps its own row (`audit_log_events`), and the
/// outbox message carries everything control records, so the receiver never
/// reads the region database.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log_events)]
pub struct AuditEvent {
    pub id: i64,
    pub organization_id: i64,
    pub actor_user_id: i64,
    pub event: String,
}

impl AuditEvent {
    /// The outbox message's payload: everything control records, so its
    /// receiver never reads the region database.
    pub fn payload(&self) -> Value {
        json!({
            "id": self.id,
            "organization_id": self.organization_id,
            "actor_user_id": self.actor_user_id,
            "event": self.event,
        })
    }
}

/// Records a region's audit event in control: insert, or nothing when a
/// redelivery finds it there already.
fn record_audit_event(cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
    let region = cx.resource::<ThisRegion>()?.0.clone();
    let payload = cx.message().payload.clone().ok_or_else(|| ReceiverError::msg("audit event without payload"))?;
    let field = |name: &str| payload.get(name).cloned().unwrap_or(Value::Null);
    let (Some(id), Some(org), Some(actor), Some(event)) = (
        field("id").as_i64(),
        field("organization_id").as_i64(),
        field("actor_user_id").as_i64(),
        field("event").as_str().map(str::to_string),
    ) else {
        return Err(ReceiverError::msg(format!("malformed audit event payload: {payload}")));
    };
    let row = (
        audit_log_entries::region_name.eq(region),
        audit_log_entries::event_id.eq(id),
        audit_log_entries::organization_id.eq(org),
        audit_log_entries::actor_user_id.eq(actor),
        audit_log_entries::event.eq(event),
    );
    with_conn!(&cx.resource::<ControlSilo>()?.0, |c| diesel::insert_into(audit_log_entries::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c)?);
    Ok(())
}

// --------------------------------------------------------------- control models

/// Splits a `regions` column (`r1,r2`).
pub fn split_regions(regions: &str) -> Vec<String> {
    regions.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect()
}

/// A user: fanned out to the regions of the organizations they belong to
/// (`regions`, kept up to date by whoever adds a membership).
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedControlModel,
)]
#[diesel(table_name = users)]
#[outbox(category = Category::UserUpdate, shard = id, regions = region_names)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub regions: String,
}

impl User {
    fn region_names(&self) -> Vec<&str> {
        region_list(&self.regions)
    }
}

/// The regions of a comma-separated list (`users.regions`, copied to `api_tokens.regions`).
fn region_list(regions: &str) -> Vec<&str> {
    regions.split(',').filter(|r| !r.is_empty()).collect()
}

impl ControlReplication for User {
    fn handle_async_replication(&self, cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
        let pool = region_pool(cx)?;
        if !self.region_names().contains(&cx.region_name()) {
            // No longer concerned by this region: drop what it cached.
            return Self::handle_async_deletion(cx, self.id, self.id, None);
        }
        let row = (user_cache::id.eq(self.id), user_cache::email.eq(&self.email), user_cache::name.eq(&self.name));
        let changes = (user_cache::email.eq(&self.email), user_cache::name.eq(&self.name));
        with_conn!(pool, |c| diesel::insert_into(user_cache::table)
            .values(row)
            .on_conflict(user_cache::id)
            .do_update()
            .set(changes)
            .execute(c)?);
        Ok(())
    }

    fn handle_async_deletion(
        cx: &mut ControlDelivery<'_>,
        id: i64,
        _: i64,
        _: Option<&Value>,
    ) -> Result<(), ReceiverError> {
        with_conn!(region_pool(cx)?, |c| c.transaction(|c| {
            diesel::delete(api_token_cache::table.filter(api_token_cache::user_id.eq(id))).execute(c)?;
            diesel::delete(user_cache::table.find(id)).execute(c)
        })?);
        Ok(())
    }
}

/// An API token: fanned out to its user's regions. `regions` is a copy of the
/// user's, because `#[outbox(regions = ..)]` sees only the row; whoever changes
/// a user's regions updates the tokens in the same transaction.
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedControlModel,
)]
#[diesel(table_name = api_tokens)]
#[outbox(category = Category::ApiTokenUpdate, shard = user_id, regions = region_names)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub regions: String,
}

impl ApiToken {
    fn region_names(&self) -> Vec<&str> {
        region_list(&self.regions)
    }
}

impl ControlReplication for ApiToken {
    fn handle_async_replication(&self, cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
        let pool = region_pool(cx)?;
        if !self.region_names().contains(&cx.region_name()) {
            return Self::handle_async_deletion(cx, self.id, self.user_id, None);
        }
        let row = (
            api_token_cache::id.eq(self.id),
            api_token_cache::user_id.eq(self.user_id),
            api_token_cache::label.eq(&self.label),
        );
        let changes = (api_token_cache::user_id.eq(self.user_id), api_token_cache::label.eq(&self.label));
        with_conn!(pool, |c| diesel::insert_into(api_token_cache::table)
            .values(row)
            .on_conflict(api_token_cache::id)
            .do_update()
            .set(changes)
            .execute(c)?);
        Ok(())
    }

    fn handle_async_deletion(
        cx: &mut ControlDelivery<'_>,
        id: i64,
        _: i64,
        _: Option<&Value>,
    ) -> Result<(), ReceiverError> {
        with_conn!(region_pool(cx)?, |c| diesel::delete(api_token_cache::table.find(id)).execute(c)?);
        Ok(())
    }
}
