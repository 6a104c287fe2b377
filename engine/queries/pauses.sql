-- Runtime pauses (engine/runtime/pauses.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: pause
-- Open a pause, unless the job has one open.
INSERT INTO cronwright.pauses (job, paused_from, reason, paused_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (job) WHERE resumed_at IS NULL DO NOTHING
RETURNING job, paused_from, resumed_at, reason, paused_by, resumed_by

-- name: resume
-- Close the job's open pause.
UPDATE cronwright.pauses SET resumed_at = greatest($2::timestamptz, paused_from), resumed_by = $3
WHERE job = $1 AND resumed_at IS NULL
RETURNING job, paused_from, resumed_at, reason, paused_by, resumed_by

-- name: open
-- Each asked job's open pause.
SELECT job, paused_from, resumed_at, reason, paused_by, resumed_by FROM cronwright.pauses
WHERE job = ANY($1::text[]) AND resumed_at IS NULL

-- name: history
-- A job's pauses, newest first, with who opened and ended each.
SELECT job, paused_from, resumed_at, reason, paused_by, resumed_by FROM cronwright.pauses
WHERE job = $1
ORDER BY paused_from DESC, id DESC
LIMIT $2
