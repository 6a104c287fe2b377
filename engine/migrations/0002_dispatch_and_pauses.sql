-- Slot accounting shared by every dispatcher (the local scheduler, the reconciler, the
-- operator's enqueue and dead-letter replay) and the runtime pause state.

-- Every (job, slot) that cronwright itself sent to a queue. The primary key makes each
-- slot dispatched at most once however many schedulers and reconcilers run; an operator
-- command may re-send on purpose (engine.runtime.dispatch, force=True). Slots the
-- Cloudflare Worker sent are not here: the Worker cannot reach Postgres.
CREATE TABLE cronwright.dispatched (
    job            text        NOT NULL,
    slot           timestamptz NOT NULL,
    source         text        NOT NULL,   -- scheduler | reconciler | enqueue | replay | backfill
    transport      text        NOT NULL,   -- postgres | cloudflare
    dispatched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, slot)
);

-- Runtime pauses with their history. A slot s of a job is paused when a row has
-- paused_from <= s < coalesce(resumed_at, 'infinity'). Paused slots are never run and
-- never caught up. At most one open pause per job.
CREATE TABLE cronwright.pauses (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text        NOT NULL,
    paused_from  timestamptz NOT NULL,
    resumed_at   timestamptz,
    reason       text,
    CHECK (resumed_at IS NULL OR resumed_at >= paused_from)
);
CREATE UNIQUE INDEX pauses_one_open_idx ON cronwright.pauses (job) WHERE resumed_at IS NULL;
CREATE INDEX pauses_job_idx ON cronwright.pauses (job, paused_from);
