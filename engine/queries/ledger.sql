-- The run ledger (engine/runtime/ledger.py, transaction.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: claim
-- The claim (migration 0010's cronwright.claim_slot: the timeouts, the pause lookup, the
-- job's lock, the claim) shares its round trip with BEGIN; its command tag's row count
-- is the answer: 0 a duplicate, 1 claimed, 2 paused, 3 superseded.
SELECT FROM generate_series(1, cronwright.claim_slot(
    $1::text, $2::timestamptz, $3::integer, $4::text, $5::timestamptz, $6::text, $7::text,
    $8::text, $9::boolean))

-- name: succeed
-- The slot's row, succeeded, and its history row (cronwright.succeed_slot), sent with
-- COMMIT.
SELECT cronwright.succeed_slot($1::text, $2::timestamptz, $3::integer, $4::text,
                               $5::timestamptz, $6::text, $7::bigint, $8::double precision,
                               $9::timestamptz)

-- name: fail
-- The failed attempt always goes into the history; it becomes the current run unless
-- the slot already succeeded (a failed rerun leaves the earlier success current).
WITH attempt AS (
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, message_id, started_at, finished_at,
         duration_ms, error_class, error, rerun_id)
    VALUES (nextval('cronwright.run_ids'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    RETURNING run_id, job, slot, status, attempt, rows, duration_ms, error_class, error,
    message_id, rerun_id, started_at, finished_at
)
INSERT INTO cronwright.runs AS r (run_id, job, slot, status, attempt, rows, duration_ms, error_class, error,
    message_id, rerun_id, started_at, finished_at)
SELECT run_id, job, slot, status, attempt, rows, duration_ms, error_class, error,
    message_id, rerun_id, started_at, finished_at FROM attempt
ON CONFLICT (job, slot) DO UPDATE
SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, message_id = EXCLUDED.message_id,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, rows = NULL,
    duration_ms = EXCLUDED.duration_ms, error_class = EXCLUDED.error_class,
    error = EXCLUDED.error, run_id = EXCLUDED.run_id, rerun_id = EXCLUDED.rerun_id
WHERE r.status <> 'succeeded'

-- name: run_slot
-- A SQL job's whole transaction in one round trip (cronwright.run_slot, migration 0010),
-- under the session's statement_timeout, which Db.call_bounded makes the time left of
-- the run.
SELECT cronwright.run_slot($1::text, $2::timestamptz, $3::integer, $4::text,
                           $5::timestamptz, $6::integer, $7::integer, $8::text, $9::text,
                           $10::text[], $11::text, $12::timestamptz, $13::bigint, $14::uuid,
                           $15::boolean)
-- name: runs
-- Each slot's current run, newest slot first (`cronwright runs`); of one job ($1), failed
-- only ($2), of one slot ($4).
SELECT job, slot, status, attempt, rows, duration_ms, error_class, error, message_id, rerun_id, started_at, finished_at, true AS current FROM cronwright.runs
WHERE ($1::text IS NULL OR job = $1) AND (NOT $2 OR status IN ('failed', 'dead_lettered'))
  AND ($4::timestamptz IS NULL OR slot = $4)
ORDER BY slot DESC, job
LIMIT $3

-- name: history
-- Every finished attempt plus the runs in progress, `current` marking the one each slot's
-- row holds (`cronwright runs --history`).
SELECT * FROM (
    SELECT h.job, h.slot, h.status, h.attempt, h.rows, h.duration_ms, h.error_class, h.error, h.message_id, h.rerun_id, h.started_at, h.finished_at, h.run_id, h.run_id = r.run_id IS TRUE AS current
    FROM cronwright.run_history AS h
    LEFT JOIN cronwright.runs AS r ON (r.job, r.slot) = (h.job, h.slot)
    UNION ALL
    SELECT job, slot, status, attempt, rows, duration_ms, error_class, error, message_id, rerun_id, started_at, finished_at, run_id, true FROM cronwright.runs
    WHERE status = 'running'
) AS h
WHERE ($1::text IS NULL OR job = $1) AND (NOT $2 OR status IN ('failed', 'dead_lettered'))
  AND ($4::timestamptz IS NULL OR slot = $4)
ORDER BY slot DESC, job, run_id DESC
LIMIT $3
