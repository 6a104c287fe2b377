-- Dead letters (engine/runtime/deadletters.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: put
-- A dead letter.
INSERT INTO cronwright.dead_letters
    (job, type, slot, message_id, body, reason, error_class, attempts, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)

-- name: list
-- Dead letters not purged, oldest first (newest first with $5: the last $4 of them); of
-- one job ($1), created since $2, of one slot ($3).
SELECT id, job, type, slot, message_id, reason, error_class, attempts, created_at, replayed_at, replayed_as, replayed_by FROM cronwright.dead_letters
WHERE purged_at IS NULL
  AND ($1::text IS NULL OR job = $1)
  AND ($2::timestamptz IS NULL OR created_at >= $2)
  AND ($3::timestamptz IS NULL OR slot = $3)
ORDER BY CASE WHEN $5::boolean THEN -id ELSE id END
LIMIT $4

-- name: pending
-- The rows a replay asks for (by id, or every pending one, of one job or all), with
-- what stops each from being replayed.
SELECT id, job, type, slot, message_id, reason, error_class, attempts, created_at, replayed_at, replayed_as, purged_at, body FROM cronwright.dead_letters
WHERE CASE WHEN $1::bigint[] IS NULL
           THEN replayed_at IS NULL AND purged_at IS NULL AND ($2::text IS NULL OR job = $2)
           ELSE id = ANY($1::bigint[]) END
ORDER BY id

-- name: mark_replayed
-- Mark one letter replayed, unless another replay did.
UPDATE cronwright.dead_letters SET replayed_at = $2, replayed_as = $3, replayed_by = $4
WHERE id = $1 AND replayed_at IS NULL

-- name: purge
-- Hide every letter created before $1.
UPDATE cronwright.dead_letters SET purged_at = $2
WHERE created_at < $1 AND purged_at IS NULL
