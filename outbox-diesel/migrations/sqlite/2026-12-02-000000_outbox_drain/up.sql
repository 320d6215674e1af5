-- Drain engine: find a claim's shards fast.
CREATE INDEX IF NOT EXISTS outbox_shard_lease_owner ON outbox_shard (lease_owner);
