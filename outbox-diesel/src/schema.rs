//! Diesel table definitions of the outbox tables.
//!
//! Timestamps are UTC, stored without a time zone so one definition serves
//! PostgreSQL (`timestamp`) and SQLite (text).

diesel::table! {
    /// Written in a region database, drained there (towards control).
    region_outbox (id) {
        id -> BigInt,
        shard_scope -> Integer,
        shard_identifier -> BigInt,
        category -> Integer,
        object_identifier -> BigInt,
        payload -> Nullable<Json>,
        scheduled_from -> Timestamp,
        scheduled_for -> Timestamp,
        date_added -> Timestamp,
    }
}

diesel::table! {
    /// Written in the control database, one row per target region.
    control_outbox (id) {
        id -> BigInt,
        shard_scope -> Integer,
        shard_identifier -> BigInt,
        region_name -> Text,
        category -> Integer,
        object_identifier -> BigInt,
        payload -> Nullable<Json>,
        scheduled_from -> Timestamp,
        scheduled_for -> Timestamp,
        date_added -> Timestamp,
    }
}

diesel::table! {
    /// Per-shard delivery state: the lease a worker holds and the backoff after failures.
    /// A shard without a row here has never failed and is not leased.
    outbox_shard (direction, shard_scope, shard_identifier, region_name) {
        direction -> Integer,
        shard_scope -> Integer,
        shard_identifier -> BigInt,
        region_name -> Text,
        lease_owner -> Nullable<Text>,
        lease_until -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        last_error_category -> Nullable<Integer>,
    }
}

diesel::table! {
    /// Dead letters: message groups that failed `max_attempts` times.
    outbox_quarantine (id) {
        id -> BigInt,
        direction -> Integer,
        shard_scope -> Integer,
        shard_identifier -> BigInt,
        region_name -> Text,
        category -> Integer,
        object_identifier -> BigInt,
        payload -> Nullable<Json>,
        first_row_id -> BigInt,
        last_row_id -> BigInt,
        row_count -> Integer,
        date_added -> Timestamp,
        attempts -> Integer,
        last_error -> Text,
        quarantined_at -> Timestamp,
        blocking -> Bool,
    }
}

diesel::table! {
    /// Backfill progress per model table.
    outbox_backfill (table_name) {
        table_name -> Text,
        low_id -> BigInt,
        version -> Integer,
    }
}

diesel::allow_tables_to_appear_in_same_query!(region_outbox, control_outbox, outbox_shard, outbox_quarantine);
