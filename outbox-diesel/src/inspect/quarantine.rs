//! Operating on dead letters: list, retry (move back into the outbox), discard.

use serde::Serialize;

use super::query::{check, load_quarantine};
use super::report::QuarantinedGroup;
use super::InspectError;
use crate::backend::OutboxConnection;
use crate::drain;

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
/// shard's backoff, in one transaction: the drain engine's
/// [`retry_quarantined`](crate::drain::retry_quarantined), as a report.
///
/// # Errors
/// [`InspectError::NoSuchQuarantine`]; database errors.
pub fn quarantine_retry<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<RetriedGroup, InspectError> {
    check(conn.db())?;
    let (group, row_id) = drain::retry_quarantined(conn, id)?.ok_or(InspectError::NoSuchQuarantine(id))?;
    Ok(RetriedGroup { group: group.into(), row_id })
}

/// Deletes a quarantined group for good; a shard it was blocking goes on (the
/// drain engine's [`discard_quarantined`](crate::drain::discard_quarantined)).
///
/// # Errors
/// [`InspectError::NoSuchQuarantine`]; database errors.
pub fn quarantine_discard<C: OutboxConnection>(conn: &mut C, id: i64) -> Result<QuarantinedGroup, InspectError> {
    check(conn.db())?;
    Ok(drain::discard_quarantined(conn, id)?.ok_or(InspectError::NoSuchQuarantine(id))?.into())
}
