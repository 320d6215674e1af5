//! Operating on dead letters: list, retry (move back into the outbox), discard.

use diesel::prelude::*;
use outbox_core::Direction;
use serde::Serialize;

use super::query::{check, load_quarantine, quarantined};
use super::report::QuarantinedGroup;
use super::InspectError;
use crate::backend::{DbConn, OutboxConnection};
use crate::schema::{control_outbox, outbox_quarantine, outbox_shard, region_outbox};
use crate::write::row::{now, the_past};

/// Every quarantined group, oldest first.
///
/// # Errors
/// [`InspectError::MissingTables`]; database errors.
pub fn quarantine_list<C: OutboxConnection>(conn: &mut C) -> Result<Vec<QuarantinedGroup>, InspectError> {
    let mut db = conn.db();
    check(db.reborrow())?;
    load_quarantine(db, None)
}

/// A group moved back into its outbox by [`quarantine_retry`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetriedGroup {
    /// The group as it was quarantined.
    pub group: QuarantinedGroup,
    /// The id of the outbox row written for it.
    pub row_id: i64,
}

/// Moves a quarantined group back into its outbox, due at once, and clears its
/// shard's backoff, in one transaction.
///
/// The group comes back as one row (its newest payload: what coalescing would
/// have delivered) under its old highest id, so it keeps its place before rows
/// written to the shard since.
///
/// # Errors
/// [`InspectError::NoSuchQuarantine`]; database errors.
pub fn quarantine_retry<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<RetriedGroup, InspectError> {
    check(conn.db())?;
    conn.transaction(|conn| {
        let group = take(conn.db(), id)?;
        let row_id = reinsert(conn.db(), &group)?;
        clear_backoff(conn.db(), &group)?;
        Ok(RetriedGroup { group, row_id })
    })
    .inspect(|_| crate::wake::notify())
}

/// Deletes a quarantined group for good; a shard it was blocking goes on.
///
/// # Errors
/// [`InspectError::NoSuchQuarantine`]; database errors.
pub fn quarantine_discard<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<QuarantinedGroup, InspectError> {
    check(conn.db())?;
    conn.transaction(|conn| {
        let group = take(conn.db(), id)?;
        clear_backoff(conn.db(), &group)?;
        Ok(group)
    })
    .inspect(|_| crate::wake::notify())
}

fn take(mut db: DbConn<'_>, id: i64) -> Result<QuarantinedGroup, InspectError> {
    let row = crate::__with_db!(db.reborrow(), |c| outbox_quarantine::table.find(id).first(c).optional())?;
    let group = row.and_then(quarantined).ok_or(InspectError::NoSuchQuarantine(id))?;
    crate::__with_db!(db.reborrow(), |c| diesel::delete(outbox_quarantine::table.find(id)).execute(c))?;
    Ok(group)
}

fn reinsert(mut db: DbConn<'_>, g: &QuarantinedGroup) -> Result<i64, InspectError> {
    let (stamp, past) = (now(), the_past());
    let id = match g.direction {
        Direction::Region => {
            let taken: i64 = crate::__with_db!(db.reborrow(), |c| region_outbox::table
                .filter(region_outbox::id.eq(g.last_row_id))
                .count()
                .get_result(c))?;
            let values = (
                region_outbox::shard_scope.eq(g.scope),
                region_outbox::shard_identifier.eq(g.shard_identifier),
                region_outbox::category.eq(g.category),
                region_outbox::object_identifier.eq(g.object_identifier),
                region_outbox::payload.eq(g.payload.as_ref()),
                region_outbox::scheduled_from.eq(stamp),
                region_outbox::scheduled_for.eq(past),
                region_outbox::date_added.eq(g.date_added),
            );
            if taken == 0 {
                crate::__with_db!(db.reborrow(), |c| diesel::insert_into(region_outbox::table)
                    .values((region_outbox::id.eq(g.last_row_id), values))
                    .returning(region_outbox::id)
                    .get_result(c))?
            } else {
                crate::__with_db!(db.reborrow(), |c| diesel::insert_into(region_outbox::table)
                    .values(values)
                    .returning(region_outbox::id)
                    .get_result(c))?
            }
        }
        Direction::Control => {
            let taken: i64 = crate::__with_db!(db.reborrow(), |c| control_outbox::table
                .filter(control_outbox::id.eq(g.last_row_id))
                .count()
                .get_result(c))?;
            let values = (
                control_outbox::shard_scope.eq(g.scope),
                control_outbox::shard_identifier.eq(g.shard_identifier),
                control_outbox::region_name.eq(&g.region_name),
                control_outbox::category.eq(g.category),
                control_outbox::object_identifier.eq(g.object_identifier),
                control_outbox::payload.eq(g.payload.as_ref()),
                control_outbox::scheduled_from.eq(stamp),
                control_outbox::scheduled_for.eq(past),
                control_outbox::date_added.eq(g.date_added),
            );
            if taken == 0 {
                crate::__with_db!(db.reborrow(), |c| diesel::insert_into(control_outbox::table)
                    .values((control_outbox::id.eq(g.last_row_id), values))
                    .returning(control_outbox::id)
                    .get_result(c))?
            } else {
                crate::__with_db!(db.reborrow(), |c| diesel::insert_into(control_outbox::table)
                    .values(values)
                    .returning(control_outbox::id)
                    .get_result(c))?
            }
        }
    };
    Ok(id)
}

/// A fresh start for the shard: its failure state goes (as the drain engine's
/// own redrive does), unless a worker holds its lease right now.
fn clear_backoff(mut db: DbConn<'_>, g: &QuarantinedGroup) -> Result<(), InspectError> {
    crate::__with_db!(db.reborrow(), |c| diesel::delete(
        outbox_shard::table
            .filter(outbox_shard::direction.eq(g.direction.code()))
            .filter(outbox_shard::shard_scope.eq(g.scope))
            .filter(outbox_shard::shard_identifier.eq(g.shard_identifier))
            .filter(outbox_shard::region_name.eq(&g.region_name))
            .filter(outbox_shard::lease_owner.is_null())
    )
    .execute(c))?;
    Ok(())
}
