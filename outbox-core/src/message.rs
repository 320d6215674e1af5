use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Direction;

/// One delivery: the newest row of a coalesced group, as a receiver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Id of the delivered (newest) row of the group.
    pub id: i64,
    /// The outbox the row came from.
    pub direction: Direction,
    /// The category id (`category` column).
    pub category: i32,
    /// The scope id (`shard_scope` column).
    pub shard_scope: i32,
    /// The shard key inside the scope (`shard_identifier` column).
    pub shard_identifier: i64,
    /// The object the message is about (`object_identifier` column).
    pub object_identifier: i64,
    /// The payload of the newest row; older payloads of the group are gone.
    pub payload: Option<Value>,
    /// Target region of a control row; `None` for region rows.
    pub region_name: Option<String>,
    /// When the oldest row of the group was written.
    pub date_added: DateTime<Utc>,
    /// Rows of the group this delivery stands for (1 when nothing coalesced).
    pub coalesced: u32,
    /// Attempts before this one (0 on the first delivery).
    pub attempt: u32,
}
