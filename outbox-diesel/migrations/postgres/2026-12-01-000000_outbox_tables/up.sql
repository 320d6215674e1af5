-- outbox tables for PostgreSQL. Timestamps are UTC, without time zone.
CREATE TABLE IF NOT EXISTS region_outbox (
    id BIGSERIAL PRIMARY KEY,
    shard_scope INTEGER NOT NULL,
    shard_identifier BIGINT NOT NULL,
    category INTEGER NOT NULL,
    object_identifier BIGINT NOT NULL,
    payload JSON,
    scheduled_from TIMESTAMP NOT NULL,
    scheduled_for TIMESTAMP NOT NULL,
    date_added TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS region_outbox_coalesce ON region_outbox (shard_scope, shard_identifier, category, object_identifier);
CREATE INDEX IF NOT EXISTS region_outbox_schedule ON region_outbox (shard_scope, shard_identifier, scheduled_for);
CREATE INDEX IF NOT EXISTS region_outbox_shard ON region_outbox (shard_scope, shard_identifier, id);

CREATE TABLE IF NOT EXISTS control_outbox (
    id BIGSERIAL PRIMARY KEY,
    shard_scope INTEGER NOT NULL,
    shard_identifier BIGINT NOT NULL,
    region_name VARCHAR(48) NOT NULL CHECK (char_length(region_name) BETWEEN 1 AND 48),
    category INTEGER NOT NULL,
    object_identifier BIGINT NOT NULL,
    payload JSON,
    scheduled_from TIMESTAMP NOT NULL,
    scheduled_for TIMESTAMP NOT NULL,
    date_added TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS control_outbox_coalesce ON control_outbox (region_name, shard_scope, shard_identifier, category, object_identifier);
CREATE INDEX IF NOT EXISTS control_outbox_schedule ON control_outbox (region_name, shard_scope, shard_identifier, scheduled_for);
CREATE INDEX IF NOT EXISTS control_outbox_shard ON control_outbox (region_name, shard_scope, shard_identifier, id);

CREATE TABLE IF NOT EXISTS outbox_shard (
    direction INTEGER NOT NULL,
    shard_scope INTEGER NOT NULL,
    shard_identifier BIGINT NOT NULL,
    region_name TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_until TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    last_error_category INTEGER,
    PRIMARY KEY (direction, shard_scope, shard_identifier, region_name)
);

CREATE TABLE IF NOT EXISTS outbox_quarantine (
    id BIGSERIAL PRIMARY KEY,
    direction INTEGER NOT NULL,
    shard_scope INTEGER NOT NULL,
    shard_identifier BIGINT NOT NULL,
    region_name TEXT NOT NULL DEFAULT '',
    category INTEGER NOT NULL,
    object_identifier BIGINT NOT NULL,
    payload JSON,
    first_row_id BIGINT NOT NULL,
    last_row_id BIGINT NOT NULL,
    row_count INTEGER NOT NULL,
    date_added TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    blocking BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_quarantine_shard ON outbox_quarantine (direction, shard_scope, shard_identifier, region_name);

CREATE TABLE IF NOT EXISTS outbox_backfill (
    table_name TEXT PRIMARY KEY NOT NULL,
    low_id BIGINT NOT NULL,
    version INTEGER NOT NULL
);
