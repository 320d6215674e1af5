-- Drain engine: find a claim's shards fast, and wake listening workers at commit.
CREATE INDEX IF NOT EXISTS outbox_shard_lease_owner ON outbox_shard (lease_owner);

-- One NOTIFY per writing transaction (PostgreSQL folds identical notifications),
-- delivered at commit, on a channel named after the schema so databases shared
-- by several applications (or test schemas) wake only their own workers.
-- A transaction that sets `outbox.notify = off` (Deferred, Synchronous flushes) sends none.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('outbox.notify', true), '') <> 'off' THEN
        PERFORM pg_notify('outbox.' || current_schema(), '');
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS region_outbox_notify ON region_outbox;
CREATE TRIGGER region_outbox_notify AFTER INSERT ON region_outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
DROP TRIGGER IF EXISTS control_outbox_notify ON control_outbox;
CREATE TRIGGER control_outbox_notify AFTER INSERT ON control_outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
