use diesel::prelude::*;
use outbox::prelude::*;

#[outbox_scope]
pub enum Scope {
    #[scope(id = 0)]
    Organization,
}

#[outbox_category]
pub enum Category {
    #[category(id = 2, scope = Scope::Organization)]
    TeamUpdate,
    #[category(id = 4, retired)]
    OldTeamUpdate,
}

diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }

#[derive(Queryable, Selectable, Insertable, AsChangeset, ReplicatedRegionModel)]
#[diesel(table_name = teams)]
#[outbox(category = Category::TeamUpdate, shard = org_id)]
pub struct Team {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
}

impl RegionReplication for Team {
    fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
        Ok(())
    }
    fn handle_async_deletion(
        _cx: &mut Delivery<'_>,
        _id: i64,
        _shard: i64,
        _payload: Option<&serde_json::Value>,
    ) -> Result<(), ReceiverError> {
        Ok(())
    }
}

fn main() {}
