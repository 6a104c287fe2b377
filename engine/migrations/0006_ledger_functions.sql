-- The ledger's claim and success as functions, so that a job's transaction takes three
-- round trips: "BEGIN; claim", the job's statements, "success; queue ack; COMMIT"
-- (engine/runtime/ledger.py sends them with their values inlined as literals: a function
-- call is cheap to plan, and PL/pgSQL keeps the plans of the statements inside for the
-- session). The slot's row is written once per run instead of twice.

-- Set the transaction's timeouts to what is left of the run's deadline (lock_timeout
-- applies from here, statement_timeout from the next statement on), look up a runtime
-- pause covering the slot, take the job's advisory lock when its runs must not overlap
-- (p_lock, not for a paused slot), then claim the slot: lock it (a second advisory lock,
-- per job and slot, held until the transaction ends: a concurrent claim of the slot
-- waits here), and read its row with a snapshot taken after the lock. A succeeded row is
-- final, except to a rerun request it has not seen yet (p_rerun_id). A claim writes
-- nothing: the slot's row is written once, by succeed_slot, with the effect (a paused
-- slot is written here, final at once, and kept in the history).
-- The slot's lock takes the two-key form (hashtext(job), the slot in minutes since the
-- epoch), apart from the job's one-key lock; another application's two-key advisory lock
-- on the same numbers would only make a claim wait for it, never change what it decides.
-- Returns 0: a duplicate (nothing claimed), 1: claimed, 2: paused.
CREATE FUNCTION cronwright.claim_slot(
    p_job text, p_slot timestamptz, p_attempt integer, p_message_id text,
    p_started_at timestamptz, p_timeout text, p_rerun_id text, p_lock text
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_paused boolean;
    v_run_id bigint;
    v_status text;
    v_rerun_id text;
BEGIN
    PERFORM set_config('statement_timeout', p_timeout, true),
            set_config('lock_timeout', p_timeout, true);
    v_paused := EXISTS (
        SELECT 1 FROM cronwright.pauses AS p
        WHERE p.job = p_job AND p.paused_from <= p_slot
          AND (p.resumed_at IS NULL OR p.resumed_at > p_slot));
    IF NOT v_paused AND p_lock IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(p_job),
                                  (extract(epoch FROM p_slot) / 60)::integer);
    SELECT r.status, r.rerun_id INTO v_status, v_rerun_id
    FROM cronwright.runs AS r WHERE r.job = p_job AND r.slot = p_slot;
    IF v_status = 'succeeded'
       AND (v_paused OR p_rerun_id IS NULL OR v_rerun_id IS NOT DISTINCT FROM p_rerun_id) THEN
        RETURN 0;
    END IF;
    IF NOT v_paused THEN
        RETURN 1;
    END IF;
    v_run_id := nextval('cronwright.run_ids');
    INSERT INTO cronwright.runs AS r
        (job, slot, status, attempt, message_id, started_at, finished_at, run_id, rerun_id)
    VALUES (p_job, p_slot, 'paused', p_attempt, p_message_id, p_started_at, p_started_at,
            v_run_id, p_rerun_id)
    ON CONFLICT (job, slot) DO UPDATE
    SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,
        message_id = EXCLUDED.message_id, started_at = EXCLUDED.started_at,
        finished_at = EXCLUDED.finished_at, rows = NULL, duration_ms = NULL,
        error_class = NULL, error = NULL, run_id = EXCLUDED.run_id,
        rerun_id = EXCLUDED.rerun_id;
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, message_id, rerun_id, started_at,
         finished_at, duration_ms)
    VALUES (v_run_id, p_job, p_slot, 'paused', p_attempt, p_message_id, p_rerun_id,
            p_started_at, p_started_at, 0);
    RETURN 2;
END $$;

-- Write the claimed slot's row, succeeded (it becomes the current run), and keep the
-- attempt in the history. Called in the claiming transaction, under the slot's lock.
CREATE FUNCTION cronwright.succeed_slot(
    p_job text, p_slot timestamptz, p_attempt integer, p_message_id text,
    p_started_at timestamptz, p_rerun_id text, p_rows bigint,
    p_duration_ms double precision, p_finished_at timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_run_id bigint := nextval('cronwright.run_ids');
BEGIN
    INSERT INTO cronwright.runs AS r
        (job, slot, status, attempt, rows, duration_ms, message_id, started_at,
         finished_at, run_id, rerun_id)
    VALUES (p_job, p_slot, 'succeeded', p_attempt, p_rows, p_duration_ms, p_message_id,
            p_started_at, p_finished_at, v_run_id, p_rerun_id)
    ON CONFLICT (job, slot) DO UPDATE
    SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, rows = EXCLUDED.rows,
        duration_ms = EXCLUDED.duration_ms, message_id = EXCLUDED.message_id,
        started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
        error_class = NULL, error = NULL, run_id = EXCLUDED.run_id,
        rerun_id = EXCLUDED.rerun_id;
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, rows, duration_ms, message_id, rerun_id,
         started_at, finished_at)
    VALUES (v_run_id, p_job, p_slot, 'succeeded', p_attempt, p_rows, p_duration_ms,
            p_message_id, p_rerun_id, p_started_at, p_finished_at);
END $$;

-- The local queue's ack (engine/adapters/pgqueue.py): a function, so that its plan is
-- kept, since it travels inlined with COMMIT.
CREATE FUNCTION cronwright.queue_ack(p_id bigint, p_lease_id uuid)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM cronwright.queue WHERE id = p_id AND lease_id = p_lease_id;
END $$;

-- One NOTIFY per INSERT statement and queue, not per row: a scheduler tick that enqueues
-- a thousand slots wakes the consumers once.
DROP TRIGGER queue_notify ON cronwright.queue;
CREATE OR REPLACE FUNCTION cronwright.queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cronwright_queue', q.queue)
    FROM (SELECT DISTINCT queue FROM added) AS q;
    RETURN NULL;
END $$;
CREATE TRIGGER queue_notify AFTER INSERT ON cronwright.queue
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION cronwright.queue_notify();
