-- Notifications and healthcheck pings (engine/runtime/outbox.py, noticescan.py,
-- incidents.py): an outbox, each event once however many processes run.

-- The outbox. A row is one message to one target, keyed by what it is about: its kind,
-- its subject (a dead letter, a job's incident, a run, an attempt) and the target's URL
-- as the manifest writes it (${NAME} unexpanded: no secret is stored). Every writer
-- inserts with ON CONFLICT DO NOTHING, so an event recorded by two processes is one row.
-- A sender claims due rows with FOR UPDATE SKIP LOCKED, moving due_at past the send's
-- timeout (its lease), and then records sent_at, a later due_at (a retry with backoff)
-- or gave_up_at. Pings (`ordered`) go out in id order per target: a healthcheck's
-- /start before its success or /fail.
CREATE TABLE cronwright.notifications (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN (
                    'dead_letter', 'missing', 'recovery', 'near_timeout',
                    'ping_start', 'ping_success', 'ping_fail')),
    subject     text        NOT NULL,
    target      text        NOT NULL,
    job         text,
    slot        timestamptz,
    title       text        NOT NULL,
    body        text        NOT NULL,
    ordered     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    due_at      timestamptz NOT NULL DEFAULT now(),
    tries       integer     NOT NULL DEFAULT 0 CHECK (tries >= 0),
    sent_at     timestamptz,
    gave_up_at  timestamptz,
    last_error  text,
    CONSTRAINT notifications_key UNIQUE (kind, subject, target)
);
-- What a sender looks at: the rows still to send, by due time; and, for an ordered row,
-- whether an earlier one of its target is still to send.
CREATE INDEX notifications_due_idx ON cronwright.notifications (due_at, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX notifications_ordered_idx ON cronwright.notifications (target, id)
    WHERE ordered AND sent_at IS NULL AND gave_up_at IS NULL;
-- Retention deletes what was sent or given up, by age.
CREATE INDEX notifications_created_idx ON cronwright.notifications (created_at);

-- Where the notifier's scan of each source (dead letters, run history) has got to. A
-- pass reads the rows in (last_id, horizon_id] once the horizon is settled (taken a few
-- seconds ago, so that a transaction holding a lower id has committed), then takes the
-- newest id as the next horizon. A database that already holds history starts at its
-- end: nothing written before notifications existed is sent.
CREATE TABLE cronwright.notification_cursors (
    source      text        PRIMARY KEY CHECK (source IN ('dead_letters', 'run_history')),
    last_id     bigint      NOT NULL,
    horizon_id  bigint      NOT NULL,
    horizon_at  timestamptz NOT NULL,
    CHECK (last_id <= horizon_id)
);
INSERT INTO cronwright.notification_cursors (source, last_id, horizon_id, horizon_at)
SELECT 'dead_letters', n, n, now()
FROM (SELECT coalesce(max(id), 0) AS n FROM cronwright.dead_letters) AS m
UNION ALL
SELECT 'run_history', n, n, now()
FROM (SELECT coalesce(max(run_id), 0) AS n FROM cronwright.run_history) AS m;

-- Each notified job's incidents: one opens at a dead letter or a missing slot when none
-- is open, and closes (a recovery) when the job succeeds at or after its newest problem
-- slot. `problem_slot` is the newest slot any problem was reported for, so a slot still
-- missing after its incident closed is not a new problem.
CREATE TABLE cronwright.notification_jobs (
    job           text        PRIMARY KEY,
    incidents     integer     NOT NULL DEFAULT 0 CHECK (incidents >= 0),
    open_since    timestamptz,
    open_kinds    text[]      NOT NULL DEFAULT '{}',
    problem_slot  timestamptz
);

-- The sane range of migration 0011, for every time column added here.
ALTER TABLE cronwright.notifications
    ADD CONSTRAINT notifications_slot_sane
        CHECK (slot >= '1970-01-01 00:00:00+00' AND slot < '10000-01-01 00:00:00+00'),
    ADD CONSTRAINT notifications_created_at_sane
        CHECK (created_at >= '1970-01-01 00:00:00+00' AND created_at < '10000-01-01 00:00:00+00'),
    ADD CONSTRAINT notifications_due_at_sane
        CHECK (due_at >= '1970-01-01 00:00:00+00' AND due_at < '10000-01-01 00:00:00+00'),
    ADD CONSTRAINT notifications_sent_at_sane
        CHECK (sent_at >= '1970-01-01 00:00:00+00' AND sent_at < '10000-01-01 00:00:00+00'),
    ADD CONSTRAINT notifications_gave_up_at_sane
        CHECK (gave_up_at >= '1970-01-01 00:00:00+00' AND gave_up_at < '10000-01-01 00:00:00+00');
ALTER TABLE cronwright.notification_cursors
    ADD CONSTRAINT notification_cursors_horizon_at_sane
        CHECK (horizon_at >= '1970-01-01 00:00:00+00' AND horizon_at < '10000-01-01 00:00:00+00');
ALTER TABLE cronwright.notification_jobs
    ADD CONSTRAINT notification_jobs_open_since_sane
        CHECK (open_since >= '1970-01-01 00:00:00+00' AND open_since < '10000-01-01 00:00:00+00'),
    ADD CONSTRAINT notification_jobs_problem_slot_sane
        CHECK (problem_slot >= '1970-01-01 00:00:00+00' AND problem_slot < '10000-01-01 00:00:00+00');
