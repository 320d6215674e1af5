DROP TABLE IF EXISTS outbox_backfill;
DROP TABLE IF EXISTS outbox_quarantine;
DROP TABLE IF EXISTS outbox_shard;
DROP TABLE IF EXISTS control_outbox;
DROP TABLE IF EXISTS region_outbox;
