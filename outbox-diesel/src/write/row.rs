//! The shape of a row about to be written, and its validation.

use chrono::{NaiveDate, NaiveDateTime, Utc};
use outbox_core::{Direction, OutboxCategory};
use serde_json::Value;

use crate::error::{Error, Result};

/// Longest `control_outbox.region_name`, in characters.
pub const MAX_REGION_NAME: usize = 48;

/// `scheduled_for` of a fresh row: far in the past, so it is due at once (Sentry's `THE_PAST`).
pub fn the_past() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2016, 8, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("valid constant date")
}

/// The current time as stored in outbox tables (UTC, no zone).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// One outbox row to write. Build it with [`OutboxRow::new`], which checks the
/// category against the scope and the direction.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// `shard_scope`.
    pub shard_scope: i32,
    /// `shard_identifier`.
    pub shard_identifier: i64,
    /// `category`.
    pub category: i32,
    /// `object_identifier`.
    pub object_identifier: i64,
    /// `payload`.
    pub payload: Option<Value>,
    /// `region_name`: `Some` for control rows, `None` for region rows.
    pub region_name: Option<String>,
}

impl OutboxRow {
    /// A region row (`region = None`) or one control row per target region.
    ///
    /// # Errors
    /// A retired category, or a region name that does not fit the column.
    pub fn new<C: OutboxCategory>(
        category: C,
        shard_identifier: i64,
        object_identifier: i64,
        payload: Option<Value>,
        region_name: Option<String>,
    ) -> Result<Self> {
        let info = category.info();
        let scope = info.scope.filter(|_| !info.retired).ok_or(Error::Retired(info.name))?;
        if let Some(name) = &region_name {
            check_region_name(name)?;
        }
        Ok(OutboxRow {
            shard_scope: scope.id,
            shard_identifier,
            category: info.id,
            object_identifier,
            payload,
            region_name,
        })
    }

    /// The outbox this row belongs to.
    pub fn direction(&self) -> Direction {
        if self.region_name.is_some() {
            Direction::Control
        } else {
            Direction::Region
        }
    }
}

/// Region names are 1 to [`MAX_REGION_NAME`] characters.
pub fn check_region_name(name: &str) -> Result<()> {
    let len = name.chars().count();
    if len == 0 || len > MAX_REGION_NAME {
        return Err(Error::RegionName { name: name.to_string(), len, max: MAX_REGION_NAME });
    }
    Ok(())
}

/// Serializes a model's payload, naming the category when it fails.
pub fn to_payload<T: serde::Serialize + ?Sized>(category: &'static str, value: &T) -> Result<Option<Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Null) => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(source) => Err(Error::Payload { category, source }),
    }
}

/// Identifier types a model may use for its primary key or shard field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an integer identifier",
    label = "outbox identifiers must be integers (i8 to i64, u8 to u64)",
    note = "`shard = ...` and the primary key (`object = ...`) must name integer fields"
)]
pub trait Identifier: Copy {
    /// The identifier as stored (BIGINT).
    ///
    /// # Errors
    /// A `u64` above `i64::MAX`.
    fn to_outbox_id(self, field: &'static str) -> Result<i64>;
}

macro_rules! lossless_identifier {
    ($($t:ty),*) => {$(
        impl Identifier for $t {
            fn to_outbox_id(self, _field: &'static str) -> Result<i64> {
                Ok(i64::from(self))
            }
        }
    )*};
}
lossless_identifier!(i8, i16, i32, i64, u8, u16, u32);

impl Identifier for u64 {
    fn to_outbox_id(self, field: &'static str) -> Result<i64> {
        i64::try_from(self).map_err(|_| Error::IdOutOfRange { field, value: self.to_string() })
    }
}

/// Collects what a control model's `regions = method` returns (any iterable of
/// string-likes). A function rather than generated code, so lints of the
/// conversion never fire in users' crates.
pub fn region_names<I>(regions: I) -> Vec<String>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    regions.into_iter().map(Into::into).collect()
}
