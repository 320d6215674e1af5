DROP TRIGGER IF EXISTS control_outbox_notify ON control_outbox;
DROP TRIGGER IF EXISTS region_outbox_notify ON region_outbox;
DROP FUNCTION IF EXISTS outbox_notify();
DROP INDEX IF EXISTS outbox_shard_lease_owner;
