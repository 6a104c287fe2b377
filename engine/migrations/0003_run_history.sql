-- Run history, reruns, runtime pauses in the ledger, and dead-letter replay.

-- cronwright.runs stays one row per (job, slot): the slot's CURRENT run, the claim that
-- makes a slot run at most once. Every finished attempt (succeeded, failed,
-- dead_lettered, paused) is also appended to cronwright.run_history; the attempt whose
-- run_id cronwright.runs holds is the current one. A rerun (rerun_id) may replace a
-- succeeded row once per rerun request.
CREATE SEQUENCE cronwright.run_ids;

ALTER TABLE cronwright.runs
    ADD COLUMN run_id bigint,
    ADD COLUMN rerun_id text,
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('running', 'succeeded', 'failed', 'dead_lettered', 'paused'));

CREATE TABLE cronwright.run_history (
    run_id       bigint      PRIMARY KEY,
    job          text        NOT NULL,
    slot         timestamptz NOT NULL,
    status       text        NOT NULL
                 CHECK (status IN ('succeeded', 'failed', 'dead_lettered', 'paused')),
    attempt      integer     NOT NULL CHECK (attempt >= 1),
    rows         bigint,
    duration_ms  double precision,
    error_class  text,
    error        text,
    message_id   text,
    rerun_id     text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL
);
-- One index only: every run inserts here. Retention's daily delete by age scans.
CREATE INDEX run_history_job_slot_idx ON cronwright.run_history (job, slot, run_id);

-- Dead letters: replayed (by `dead-letters replay`, at most once each) and purged (by
-- `dead-letters purge`; hidden from `list`, deleted by retention).
ALTER TABLE cronwright.dead_letters
    ADD COLUMN replayed_at timestamptz,
    ADD COLUMN replayed_as text,   -- run | enqueue:<transport>
    ADD COLUMN purged_at   timestamptz;
CREATE INDEX dead_letters_created_idx ON cronwright.dead_letters (created_at);
