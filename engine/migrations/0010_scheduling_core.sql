-- The scheduling core (engine/runtime/scheduling.py): where a job's history starts, the
-- `superseded` status of a `latest` job's older slots, and the local queue's times taken
-- from the database's clock.

-- Each job's history starts when a scheduler, reconciler or consumer of this database
-- first saw it: nothing before that is caught up (unless the job sets catch_up.since).
-- A database that already ran jobs keeps their history: each starts at its first slot.
CREATE TABLE cronwright.jobs (
    job         text        PRIMARY KEY,
    first_seen  timestamptz NOT NULL
);
INSERT INTO cronwright.jobs (job, first_seen)
SELECT job, min(slot) FROM (
    SELECT job, slot FROM cronwright.runs
    UNION ALL
    SELECT job, slot FROM cronwright.dispatched
) AS s
GROUP BY job;

-- A slot of a `latest` job that arrives after a newer slot of the job succeeded is
-- recorded `superseded` and not run: running it would move a refresh back in time.
ALTER TABLE cronwright.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check CHECK (
        status IN ('running', 'succeeded', 'failed', 'dead_lettered', 'paused', 'superseded'));
ALTER TABLE cronwright.run_history
    DROP CONSTRAINT run_history_status_check,
    ADD CONSTRAINT run_history_status_check CHECK (
        status IN ('succeeded', 'failed', 'dead_lettered', 'paused', 'superseded'));

DROP FUNCTION cronwright.run_slot(text, timestamptz, integer, text, timestamptz, integer,
                                  integer, text, text, text[], text, timestamptz, bigint, uuid);
DROP FUNCTION cronwright.claim_slot(text, timestamptz, integer, text, timestamptz, text, text,
                                    text);

-- As in migration 0006, plus p_supersede (the job's catch-up policy is `latest`): a slot
-- older than one of the job's succeeded slots is recorded `superseded`, final at once
-- like a paused one, unless a rerun request asks for it. The job's lock is taken before
-- the check, so a newer run of a job that forbids overlap has committed (or not) by then.
-- Returns 0: a duplicate (nothing claimed), 1: claimed, 2: paused, 3: superseded.
CREATE FUNCTION cronwright.claim_slot(
    p_job text, p_slot timestamptz, p_attempt integer, p_message_id text,
    p_started_at timestamptz, p_timeout text, p_rerun_id text, p_lock text,
    p_supersede boolean
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_final text;
    v_run_id bigint;
    v_status text;
    v_rerun_id text;
BEGIN
    PERFORM set_config('statement_timeout', p_timeout, true),
            set_config('lock_timeout', p_timeout, true);
    IF EXISTS (
        SELECT 1 FROM cronwright.pauses AS p
        WHERE p.job = p_job AND p.paused_from <= p_slot
          AND (p.resumed_at IS NULL OR p.resumed_at > p_slot)) THEN
        v_final := 'paused';
    END IF;
    IF v_final IS NULL AND p_lock IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(p_job),
                                  (extract(epoch FROM p_slot) / 60)::integer);
    SELECT r.status, r.rerun_id INTO v_status, v_rerun_id
    FROM cronwright.runs AS r WHERE r.job = p_job AND r.slot = p_slot;
    IF v_status = 'succeeded'
       AND (v_final IS NOT NULL OR p_rerun_id IS NULL
            OR v_rerun_id IS NOT DISTINCT FROM p_rerun_id) THEN
        RETURN 0;
    END IF;
    IF v_final IS NULL AND p_supersede AND p_rerun_id IS NULL AND EXISTS (
        SELECT 1 FROM cronwright.runs AS r
        WHERE r.job = p_job AND r.slot > p_slot AND r.status = 'succeeded') THEN
        v_final := 'superseded';
    END IF;
    IF v_final IS NULL THEN
        RETURN 1;
    END IF;
    v_run_id := nextval('cronwright.run_ids');
    INSERT INTO cronwright.runs AS r
        (job, slot, status, attempt, message_id, started_at, finished_at, run_id, rerun_id)
    VALUES (p_job, p_slot, v_final, p_attempt, p_message_id, p_started_at, p_started_at,
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
    VALUES (v_run_id, p_job, p_slot, v_final, p_attempt, p_message_id, p_rerun_id,
            p_started_at, p_started_at, 0);
    RETURN CASE v_final WHEN 'paused' THEN 2 ELSE 3 END;
END $$;

-- As in migration 0008, plus p_supersede (passed to claim_slot). Returns the rows the
-- statements affected, or -1 for a duplicate, -2 for a paused slot, -3 for a superseded
-- one; the ack runs for all four.
CREATE FUNCTION cronwright.run_slot(
    p_job text, p_slot timestamptz, p_attempt integer, p_message_id text,
    p_started_at timestamptz, p_timeout_ms integer, p_slack_ms integer, p_rerun_id text,
    p_lock text, p_statements text[], p_ack text, p_finished_at timestamptz,
    p_queue_id bigint, p_lease_id uuid, p_supersede boolean
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_have_ms double precision :=
        extract(epoch FROM current_setting('statement_timeout')::interval) * 1000;
    v_t0 timestamptz := clock_timestamp();
    v_claim integer;
    v_rows bigint := 0;
    v_count bigint;
    v_statement text;
BEGIN
    IF v_have_ms < p_timeout_ms OR v_have_ms > p_timeout_ms + p_slack_ms THEN
        RAISE EXCEPTION 'statement_timeout is %, the run needs % ms',
                        current_setting('statement_timeout'), p_timeout_ms
            USING ERRCODE = 'CW001';
    END IF;
    v_claim := cronwright.claim_slot(
        p_job, p_slot, p_attempt, p_message_id, p_started_at,
        greatest(1, p_timeout_ms - 5 - ceil(extract(epoch FROM clock_timestamp()
                                                    - statement_timestamp()) * 1000)::integer)
            || 'ms',
        p_rerun_id, p_lock, p_supersede);
    IF v_claim = 1 THEN
        FOREACH v_statement IN ARRAY p_statements LOOP
            EXECUTE v_statement;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_rows := v_rows + v_count;
        END LOOP;
        PERFORM cronwright.succeed_slot(
            p_job, p_slot, p_attempt, p_message_id, p_started_at, p_rerun_id, v_rows,
            extract(epoch FROM clock_timestamp() - v_t0) * 1000,
            p_finished_at + (clock_timestamp() - v_t0));
    END IF;
    IF p_queue_id IS NOT NULL THEN
        PERFORM cronwright.queue_ack(p_queue_id, p_lease_id);
    END IF;
    IF p_ack IS NOT NULL THEN
        EXECUTE p_ack;
    END IF;
    RETURN CASE v_claim WHEN 1 THEN v_rows WHEN 0 THEN -1 WHEN 2 THEN -2 ELSE -3 END;
END $$;

-- The local queue's times come from the database's clock: a host whose clock runs ahead
-- could otherwise see every other consumer's lease as lapsed and steal it, and one that
-- runs behind would see nothing as visible. p_now is NULL in production (now() decides);
-- tests and the demo pass their accelerated clock's time. The claim also returns the
-- time it used, which the consumer takes as "now" when it checks that a slot is due.
-- A row whose attempts reached the integer's end (written by hand) is claimed as it is
-- rather than failing every claim: its next failure exhausts the job's retries.
DROP FUNCTION cronwright.queue_claim(text, timestamptz, timestamptz, integer);
CREATE FUNCTION cronwright.queue_claim(
    p_queue text, p_now timestamptz, p_lease_seconds double precision, p_n integer
) RETURNS TABLE (id bigint, body text, attempts integer, lease_id uuid, claimed_at timestamptz)
LANGUAGE plpgsql
SET enable_bitmapscan = off SET enable_seqscan = off SET enable_sort = off
AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    RETURN QUERY
    UPDATE cronwright.queue AS q
    SET attempts = q.attempts + (q.attempts < 2147483647)::integer,
        visible_at = v_now + make_interval(secs => p_lease_seconds),
        lease_id = gen_random_uuid()
    FROM (
        SELECT r.id FROM cronwright.queue AS r
        WHERE r.queue = p_queue AND r.visible_at <= v_now
        ORDER BY r.visible_at, r.id
        LIMIT p_n
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE q.id = c.id
    RETURNING q.id, q.body, q.attempts, q.lease_id, v_now;
END $$;
