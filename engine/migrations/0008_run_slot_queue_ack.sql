-- run_slot (migration 0007) runs the local queue's ack as a call of its own, not as
-- text: p_queue_id and p_lease_id name the cronwright.queue row that
-- cronwright.queue_ack (migration 0006, the ack of engine/adapters/pgqueue.py) deletes,
-- and the call's plan is kept like the function's others. A text ack (p_ack, any other
-- queue's) still goes through EXECUTE, which parses and plans it on every call: about
-- 12 us of the server's time a job, as much as the claim's lookups. Everything else is
-- 0007's.
DROP FUNCTION cronwright.run_slot(text, timestamptz, integer, text, timestamptz, integer,
                                  integer, text, text, text[], text, timestamptz);

CREATE FUNCTION cronwright.run_slot(
    p_job text, p_slot timestamptz, p_attempt integer, p_message_id text,
    p_started_at timestamptz, p_timeout_ms integer, p_slack_ms integer, p_rerun_id text,
    p_lock text, p_statements text[], p_ack text, p_finished_at timestamptz,
    p_queue_id bigint, p_lease_id uuid
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
    -- Waits for the job's lock end a few ms before the statement's timeout, so that a run
    -- that waited too long for another one says so (lock_not_available).
    v_claim := cronwright.claim_slot(
        p_job, p_slot, p_attempt, p_message_id, p_started_at,
        greatest(1, p_timeout_ms - 5 - ceil(extract(epoch FROM clock_timestamp()
                                                    - statement_timestamp()) * 1000)::integer)
            || 'ms',
        p_rerun_id, p_lock);
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
    RETURN CASE v_claim WHEN 1 THEN v_rows WHEN 0 THEN -1 ELSE -2 END;
END $$;
