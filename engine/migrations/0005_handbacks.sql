-- Deliveries of a Cloudflare Queues message that were handed back without being a job
-- attempt (its slot was not due yet, its dead letter could not be written, the consumer
-- could not run it). Cloudflare counts every delivery; the pull consumer subtracts these
-- so hand-backs never use up the job's own attempt budget (engine/runtime/budget.py).
-- A row lives while its message does; the consumer deletes it when it acks the message.
CREATE TABLE cronwright.handbacks (
    queue       text        NOT NULL,
    message_id  text        NOT NULL,
    count       integer     NOT NULL CHECK (count >= 1),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, message_id)
);
