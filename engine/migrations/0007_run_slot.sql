-- A SQL job's whole transaction in one round trip (engine/runtime/transaction.py,
-- _in_one_round_trip):
-- one call of cronwright.run_slot, which is its own transaction, claims the slot
-- (cronwright.claim_slot: its timeouts, the pause lookup, the job's lock, the slot's
-- lock), runs the job's statements (their values written in as literals), records the
-- success (cronwright.succeed_slot) and runs the queue's ack. The effect, the ledger row
-- and the ack commit together or not at all, as in the three-round-trip transaction.
--
-- The run's deadline. statement_timeout is armed when a statement starts, so a value set
-- inside the call would not bound the call itself: the session's must already be the
-- time left of the run (p_timeout_ms, or at most p_slack_ms more). When it is not, the
-- call does nothing and raises SQLSTATE CW001; the caller then sets the session's
-- statement_timeout on the same connection and calls again. Consecutive runs of jobs
-- with one timeout set it once per connection.
--
-- pg_stat_activity shows this call, not the job's statement inside it (its wait_event
-- still tells a sleep or a lock wait); cronwright's logs and metrics name the job.
--
-- Statements run by PL/pgSQL's EXECUTE, each with a snapshot of its own (READ COMMITTED,
-- like separate statements of a transaction), and their row counts add up to the run's
-- rows. Returns those rows, or -1 for a duplicate, -2 for a slot inside a pause (recorded
-- by claim_slot); the ack runs for all three.
CREATE FUNCTION cronwright.run_slot(
    p_job text, p_slot timestamptz, p_attempt integer, p_message_id text,
    p_started_at timestamptz, p_timeout_ms integer, p_slack_ms integer, p_rerun_id text,
    p_lock text, p_statements text[], p_ack text, p_finished_at timestamptz
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
    IF p_ack IS NOT NULL THEN
        EXECUTE p_ack;
    END IF;
    RETURN CASE v_claim WHEN 1 THEN v_rows WHEN 0 THEN -1 ELSE -2 END;
END $$;
