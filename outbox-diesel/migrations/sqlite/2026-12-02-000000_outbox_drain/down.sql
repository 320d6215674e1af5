DROP INDEX IF EXISTS outbox_shard_lease_owner;
