-- cronwright's own tables: the run ledger and the dead letters.
-- (cronwright.schema_migrations is created by engine/adapters/migrate.py before any migration runs.)

CREATE SCHEMA IF NOT EXISTS cronwright;

-- One row per (job, slot), like pg_cron's job_run_details but keyed by the slot: the
-- claim that makes a slot run at most once. A row is 'succeeded' only when the job's
-- effect committed in the same transaction.
CREATE TABLE cronwright.runs (
    job          text        NOT NULL,
    slot         timestamptz NOT NULL,
    status       text        NOT NULL
                 CHECK (status IN ('running', 'succeeded', 'failed', 'dead_lettered')),
    attempt      integer     NOT NULL CHECK (attempt >= 1),
    rows         bigint,
    duration_ms  double precision,
    error_class  text,
    error        text,
    message_id   text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    PRIMARY KEY (job, slot)
);

-- `cronwright runs --failed` and "latest runs of a job".
CREATE INDEX runs_failed_idx ON cronwright.runs (finished_at DESC)
    WHERE status IN ('failed', 'dead_lettered');

-- Messages that could not be run: poison bodies (job and slot unknown) and jobs whose
-- retries ran out or whose error was permanent.
CREATE TABLE cronwright.dead_letters (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text,
    type         text,
    slot         timestamptz,
    message_id   text,
    body         text        NOT NULL,
    reason       text        NOT NULL,
    error_class  text        NOT NULL,
    attempts     integer     NOT NULL CHECK (attempts >= 1),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dead_letters_job_slot_idx ON cronwright.dead_letters (job, slot);
