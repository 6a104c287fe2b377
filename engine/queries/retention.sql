-- Retention (engine/runtime/retention.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: runs
-- Run history older than $1, except each slot's current run.
DELETE FROM cronwright.run_history AS h
WHERE h.finished_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM cronwright.runs AS r
      WHERE r.job = h.job AND r.slot = h.slot AND r.run_id = h.run_id
  )

-- name: dead_letters
-- Dead letters replayed or purged before $1.
DELETE FROM cronwright.dead_letters
WHERE coalesce(replayed_at, purged_at) < $1

-- name: notifications
-- Notifications sent or given up, recorded before $1.
DELETE FROM cronwright.notifications
WHERE created_at < $1 AND (sent_at IS NOT NULL OR gave_up_at IS NOT NULL)
