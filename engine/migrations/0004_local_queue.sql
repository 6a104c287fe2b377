-- The local queue: what `cronwright serve` and `consume --transport postgres` pull, with
-- Cloudflare Queues' delivery semantics (at-least-once, a per-message delay, attempts
-- counted from 1 on delivery). A row is a message not yet done: succeeded, duplicate and
-- dead-lettered messages are deleted, a succeeded one in the job's own transaction.
--
-- visible_at is both the delay and the lease: a claim moves it to now + lease, a running
-- consumer's heartbeat keeps moving it, and a consumer that died stops doing so, so the
-- message comes back when its lease runs out. lease_id names the current delivery, so a
-- consumer whose lease lapsed cannot ack or retry someone else's delivery.
CREATE TABLE cronwright.queue (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue        text        NOT NULL,
    body         text        NOT NULL,   -- the JSON body the Worker would send
    job          text,                   -- NULL for a body that names no known job
    slot         timestamptz,
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    visible_at   timestamptz NOT NULL,
    lease_id     uuid,
    enqueued_at  timestamptz NOT NULL
);
CREATE INDEX queue_ready_idx ON cronwright.queue (queue, visible_at, id);

-- Wakes idle consumers at once instead of at their next poll.
CREATE FUNCTION cronwright.queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cronwright_queue', NEW.queue);
    RETURN NULL;
END $$;
CREATE TRIGGER queue_notify AFTER INSERT ON cronwright.queue
    FOR EACH ROW EXECUTE FUNCTION cronwright.queue_notify();
