use diesel::QueryResult;
use outbox_core::{Direction, OutboxCategory};
use serde_json::Value;

use crate::backend::{DbConn, OutboxConnection};
use crate::error::{Error, Result};
use crate::write::{insert_rows, OutboxRow};

/// A Diesel model whose changes write outbox rows in the same transaction.
///
/// Implemented by `#[derive(ReplicatedRegionModel)]` and
/// `#[derive(ReplicatedControlModel)]`; the provided methods are the hooks users
/// call. Each one joins the caller's open transaction (as a savepoint) or opens
/// its own, so the model change and its outbox rows commit or roll back together.
///
/// ```
/// # use outbox::prelude::*;
/// # use diesel::prelude::*;
/// # use diesel::SqliteConnection;
/// # diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }
/// # #[outbox_scope] pub enum Scope { #[scope(id = 0)] Organization }
/// # #[outbox_category] pub enum Category { #[category(id = 2, scope = Scope::Organization)] TeamUpdate }
/// #[derive(Queryable, Selectable, Insertable, AsChangeset, Identifiable, ReplicatedRegionModel)]
/// #[diesel(table_name = teams)]
/// #[outbox(category = Category::TeamUpdate, shard = organization_id)]
/// pub struct Team { pub id: i64, pub organization_id: i64, pub name: String }
///
/// impl RegionReplication for Team {
///     fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> { Ok(()) }
///     fn handle_async_deletion(_cx: &mut Delivery<'_>, _id: i64, _shard: i64, _payload: Option<&serde_json::Value>)
///         -> Result<(), ReceiverError> { Ok(()) }
/// }
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// outbox::migrate(&mut conn)?;
/// diesel::sql_query("CREATE TABLE teams (id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, name TEXT NOT NULL)")
///     .execute(&mut conn)?;
/// let team = Team { id: 1, organization_id: 10, name: "core".into() };
/// team.save(&mut conn)?;     // team row + one region_outbox row, one transaction
/// team.delete(&mut conn)?;   // outbox row written before the delete
/// assert_eq!(outbox::pending_rows(&mut conn)?.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait OutboxModel: Sized + Send + Sync + 'static {
    /// The enum of categories the model's category belongs to.
    type Category: OutboxCategory;
    /// The outbox this model writes to.
    const DIRECTION: Direction;
    /// The model's type name, for errors and reports.
    const MODEL_NAME: &'static str;
    /// The model's table name, for backfill watermarks.
    const TABLE_NAME: &'static str;
    /// `#[outbox(replication_version = N)]`, 1 by default; raising it restarts backfills.
    const REPLICATION_VERSION: i32 = 1;

    /// `#[outbox(category = ...)]`.
    fn outbox_category() -> Self::Category;
    /// The primary key (or `object = field`) as stored.
    ///
    /// # Errors
    /// An identifier that does not fit BIGINT.
    fn object_identifier(&self) -> Result<i64>;
    /// The `shard = field` value as stored.
    ///
    /// # Errors
    /// An identifier that does not fit BIGINT.
    fn shard_identifier(&self) -> Result<i64>;
    /// `#[outbox(payload = method)]`: data a deletion receiver needs after the row is gone.
    ///
    /// # Errors
    /// A payload that does not serialize.
    fn payload_for_update(&self) -> Result<Option<Value>> {
        Ok(None)
    }
    /// `#[outbox(regions = method)]`: target regions of a control model.
    fn outbox_region_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Upserts the row together with `rows` (see [`ChangeWithOutbox`](crate::write::ChangeWithOutbox)).
    #[doc(hidden)]
    fn __outbox_save(&self, rows: &[OutboxRow], db: DbConn<'_>) -> Result<()>;
    /// Updates the row; returns the rows changed.
    #[doc(hidden)]
    fn __outbox_update(&self, db: DbConn<'_>) -> QueryResult<usize>;
    /// Inserts `models` together with `rows`.
    #[doc(hidden)]
    fn __outbox_insert_all(models: &[Self], rows: &[OutboxRow], db: DbConn<'_>) -> Result<()>;
    /// Deletes `models` (at most [`MODELS_PER_STATEMENT`]) together with writing `rows`.
    #[doc(hidden)]
    fn __outbox_delete_all(models: &[Self], rows: &[OutboxRow], db: DbConn<'_>) -> Result<()>;
    #[doc(hidden)]
    fn __outbox_load(object_identifier: i64, db: DbConn<'_>) -> QueryResult<Option<Self>>;
    #[doc(hidden)]
    fn __outbox_load_batch(after: i64, limit: i64, db: DbConn<'_>) -> QueryResult<Vec<Self>>;

    /// The outbox rows one change of this model writes: one region row, or one
    /// control row per target region.
    ///
    /// # Errors
    /// A retired category, a bad identifier, payload or region name, or a control
    /// model with no target region.
    fn outbox_rows(&self) -> Result<Vec<OutboxRow>> {
        let category = Self::outbox_category();
        let (shard, object, payload) =
            (self.shard_identifier()?, self.object_identifier()?, self.payload_for_update()?);
        match Self::DIRECTION {
            Direction::Region => Ok(vec![OutboxRow::new(category, shard, object, payload, None)?]),
            Direction::Control => {
                let regions = self.outbox_region_names();
                if regions.is_empty() {
                    return Err(Error::NoRegions { model: Self::MODEL_NAME, object });
                }
                regions
                    .into_iter()
                    .map(|region| OutboxRow::new(category, shard, object, payload.clone(), Some(region)))
                    .collect()
            }
        }
    }

    /// Inserts the row, or updates it when its primary key exists, and writes its
    /// outbox rows, in one transaction.
    ///
    /// # Errors
    /// Bad input (see [`OutboxModel::outbox_rows`]) before anything is written; database errors.
    fn save<C: OutboxConnection>(&self, conn: &mut C) -> Result<()> {
        let rows = self.outbox_rows()?;
        self.__outbox_save(&rows, conn.db())?;
        crate::wake::after_write(conn);
        Ok(())
    }

    /// Updates the existing row and writes its outbox rows, in one transaction.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row has this primary key (nothing is written).
    fn update<C: OutboxConnection>(&self, conn: &mut C) -> Result<()> {
        let rows = self.outbox_rows()?;
        conn.transaction(|conn| {
            if self.__outbox_update(conn.db())? == 0 {
                return Err(Error::NotFound { model: Self::MODEL_NAME, object: self.object_identifier()? });
            }
            insert_rows(conn.db(), &rows).map(drop)
        })?;
        crate::wake::after_write(conn);
        Ok(())
    }

    /// Writes the outbox rows (payload computed from the live row), then deletes
    /// the row, in one transaction. Deleting a row that is already gone still
    /// writes the rows, so replicas converge.
    ///
    /// # Errors
    /// As [`OutboxModel::save`].
    fn delete<C: OutboxConnection>(&self, conn: &mut C) -> Result<()> {
        Self::bulk_delete(conn, std::slice::from_ref(self))
    }

    /// Inserts every model with one statement and all their outbox rows with one
    /// more, atomically (on PostgreSQL both are one statement). Batches of more than
    /// 1,000 models take one pair of statements per 1,000, in one
    /// transaction.
    ///
    /// # Errors
    /// As [`OutboxModel::save`]; a primary key that exists fails the whole batch.
    fn bulk_create<C: OutboxConnection>(conn: &mut C, models: &[Self]) -> Result<()> {
        in_chunks(conn, models, Self::__outbox_insert_all)
    }

    /// Updates every model (one statement each: SQL has no portable multi-row
    /// update) and writes all their outbox rows with one statement.
    ///
    /// # Errors
    /// [`Error::NotFound`] when one of them does not exist (nothing is written).
    fn bulk_update<C: OutboxConnection>(conn: &mut C, models: &[Self]) -> Result<()> {
        let rows = all_rows(models)?;
        conn.transaction(|conn| {
            for model in models {
                if model.__outbox_update(conn.db())? == 0 {
                    return Err(Error::NotFound { model: Self::MODEL_NAME, object: model.object_identifier()? });
                }
            }
            insert_rows(conn.db(), &rows).map(drop)
        })?;
        crate::wake::after_write(conn);
        Ok(())
    }

    /// Writes all outbox rows with one statement and deletes every model with one
    /// more, atomically (see [`OutboxModel::bulk_create`] for large batches).
    ///
    /// # Errors
    /// As [`OutboxModel::save`].
    fn bulk_delete<C: OutboxConnection>(conn: &mut C, models: &[Self]) -> Result<()> {
        in_chunks(conn, models, Self::__outbox_delete_all)
    }
}

/// Models per INSERT or DELETE: keeps the bound parameters under PostgreSQL's
/// 65,535 for models of up to 65 columns.
pub const MODELS_PER_STATEMENT: usize = 1_000;

type Change<M> = fn(&[M], &[OutboxRow], DbConn<'_>) -> Result<()>;

/// Applies `change` to `models` with their outbox rows: one call when they fit one
/// statement (no transaction round trips on PostgreSQL), else one per chunk in a
/// transaction. Every row is validated before anything is written.
fn in_chunks<M: OutboxModel, C: OutboxConnection>(conn: &mut C, models: &[M], change: Change<M>) -> Result<()> {
    if models.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<OutboxRow>> = models.iter().map(OutboxModel::outbox_rows).collect::<Result<_>>()?;
    if models.len() <= MODELS_PER_STATEMENT {
        change(models, &rows.concat(), conn.db())?;
    } else {
        conn.transaction(|conn| {
            for (models, rows) in models.chunks(MODELS_PER_STATEMENT).zip(rows.chunks(MODELS_PER_STATEMENT)) {
                change(models, &rows.concat(), conn.db())?;
            }
            Ok::<_, Error>(())
        })?;
    }
    crate::wake::after_write(conn);
    Ok(())
}

fn all_rows<M: OutboxModel>(models: &[M]) -> Result<Vec<OutboxRow>> {
    let mut rows = Vec::with_capacity(models.len());
    for model in models {
        rows.extend(model.outbox_rows()?);
    }
    Ok(rows)
}
