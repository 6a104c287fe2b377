-- Runtime pauses (engine/runtime/pauses.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: pause
-- Open a pause, unless the job has one open.
INSERT INTO cronwright.pauses (job, paused_from, reason) VALUES ($1, $2, $3)
ON CONFLICT (job) WHERE resumed_at IS NULL DO NOTHING
RETURNING job, paused_from, resumed_at, reason

-- name: resume
-- Close the job's open pause.
UPDATE cronwright.pauses SET resumed_at = greatest($2::timestamptz, paused_from)
WHERE job = $1 AND resumed_at IS NULL
RETURNING job, paused_from, resumed_at, reason

-- name: open
-- Each asked job's open pause.
SELECT job, paused_from, resumed_at, reason FROM cronwright.pauses
WHERE job = ANY($1::text[]) AND resumed_at IS NULL
