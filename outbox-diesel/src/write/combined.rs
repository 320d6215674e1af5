//! A model change and its outbox rows, written atomically in as few round trips
//! as the backend allows.
//!
//! On PostgreSQL the change and the outbox insert become ONE statement
//! (`WITH __outbox_change AS (<change>) INSERT INTO region_outbox ...`): a
//! statement is atomic on its own, so no `BEGIN`/`COMMIT` (or savepoint) round
//! trips are needed; data-modifying CTEs always run to completion. On SQLite,
//! where a round trip is a function call, the two statements share a transaction.

use diesel::query_dsl::methods::ExecuteDsl;

use crate::error::Result;
use crate::write::insert::{insert_rows, values, written, Values, CHUNK};
use crate::write::OutboxRow;
use crate::OutboxConnection;

/// Connections that can apply a model change `Q` together with its outbox rows.
/// Generated model code calls it once per backend.
pub trait ChangeWithOutbox<Q>: OutboxConnection {
    /// Runs `change` (an INSERT, UPDATE or DELETE of the model) and inserts `rows`,
    /// atomically: joins the caller's transaction when one is open.
    ///
    /// # Errors
    /// Database errors; nothing is written then.
    fn change_with_outbox(&mut self, change: Q, rows: &[OutboxRow]) -> Result<()>;
}

/// Two statements in one transaction (savepoint when nested).
fn in_transaction<C, Q>(conn: &mut C, change: Q, rows: &[OutboxRow]) -> Result<()>
where
    C: OutboxConnection,
    Q: ExecuteDsl<C>,
{
    conn.transaction(|conn| {
        ExecuteDsl::execute(change, conn)?;
        insert_rows(conn.db(), rows).map(drop)
    })
}

#[cfg(feature = "sqlite")]
impl<Q: ExecuteDsl<diesel::SqliteConnection>> ChangeWithOutbox<Q> for diesel::SqliteConnection {
    fn change_with_outbox(&mut self, change: Q, rows: &[OutboxRow]) -> Result<()> {
        in_transaction(self, change, rows)
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use diesel::pg::Pg;
    use diesel::prelude::*;
    use diesel::query_builder::{AstPass, QueryFragment, QueryId};

    use super::*;
    use crate::schema::{control_outbox, region_outbox};

    /// `WITH __outbox_change AS (<change>) <outbox insert>`.
    struct WithOutbox<C, O> {
        change: C,
        outbox: O,
    }

    impl<C: QueryFragment<Pg>, O: QueryFragment<Pg>> QueryFragment<Pg> for WithOutbox<C, O> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("WITH __outbox_change AS (");
            self.change.walk_ast(out.reborrow())?;
            out.push_sql(") ");
            self.outbox.walk_ast(out.reborrow())
        }
    }

    impl<C, O> QueryId for WithOutbox<C, O> {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    impl<C, O> RunQueryDsl<PgConnection> for WithOutbox<C, O> {}

    impl<Q> ChangeWithOutbox<Q> for PgConnection
    where
        Q: QueryFragment<Pg> + QueryId + ExecuteDsl<PgConnection>,
    {
        fn change_with_outbox(&mut self, change: Q, rows: &[OutboxRow]) -> Result<()> {
            let [region, control] = values(rows);
            match (region, control) {
                (Values::Region(r), Values::Control(c)) if c.is_empty() && !r.is_empty() && r.len() <= CHUNK => {
                    let outbox = diesel::insert_into(region_outbox::table).values(&r);
                    WithOutbox { change, outbox }.execute(self)?;
                }
                (Values::Region(r), Values::Control(c)) if r.is_empty() && !c.is_empty() && c.len() <= CHUNK => {
                    let outbox = diesel::insert_into(control_outbox::table).values(&c);
                    WithOutbox { change, outbox }.execute(self)?;
                }
                // Nothing to write, both tables, or more rows than one statement binds.
                _ => return in_transaction(self, change, rows),
            }
            written(rows);
            Ok(())
        }
    }
}
