-- Notifications and pings (engine/runtime/outbox.py, engine/runtime/noticescan.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: record
-- Notices, in the order given; one row per (kind, subject, target) however many
-- processes record it.
INSERT INTO cronwright.notifications (kind, subject, target, job, slot, title, body, ordered)
SELECT kind, subject, target, job, slot, title, body, ordered
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
            $7::text[], $8::boolean[])
     WITH ORDINALITY AS n(kind, subject, target, job, slot, title, body, ordered, i)
ORDER BY i
ON CONFLICT ON CONSTRAINT notifications_key DO NOTHING

-- name: claim
-- Up to $1 due rows, pings ($3) or notifications, each leased for $2 seconds (its due_at
-- moves past the send) and its try counted. A ping waits while an earlier one of its
-- target is still to send.
UPDATE cronwright.notifications AS n
SET due_at = now() + make_interval(secs => $2), tries = n.tries + 1
FROM (
    SELECT o.id FROM cronwright.notifications AS o
    WHERE o.sent_at IS NULL AND o.gave_up_at IS NULL AND o.due_at <= now()
      AND o.ordered = $3
      AND NOT (o.ordered AND EXISTS (
          SELECT 1 FROM cronwright.notifications AS e
          WHERE e.ordered AND e.target = o.target AND e.id < o.id
            AND e.sent_at IS NULL AND e.gave_up_at IS NULL))
    ORDER BY o.due_at, o.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) AS c
WHERE n.id = c.id
RETURNING n.id, n.kind, n.subject, n.target, n.job, n.slot, n.title, n.body, n.tries

-- name: sent
-- A claimed row delivered (unless its lease lapsed and another sender claimed it since).
UPDATE cronwright.notifications SET sent_at = now(), last_error = NULL
WHERE id = $1 AND tries = $2 AND sent_at IS NULL AND gave_up_at IS NULL

-- name: retry
-- A claimed row not delivered: due again in $3 seconds.
UPDATE cronwright.notifications
SET due_at = now() + make_interval(secs => $3), last_error = $4
WHERE id = $1 AND tries = $2 AND sent_at IS NULL AND gave_up_at IS NULL

-- name: give_up
-- A claimed row not delivered, for the last time.
UPDATE cronwright.notifications SET gave_up_at = now(), last_error = $3
WHERE id = $1 AND tries = $2 AND sent_at IS NULL AND gave_up_at IS NULL

-- name: scan_lock
-- One scan at a time, whatever the number of processes: the others skip their pass.
SELECT pg_try_advisory_xact_lock(hashtextextended('cronwright.notifications.scan', 0))
    AS locked

-- name: cursors
-- Where the scan of each source has got to: settled, its horizon is older than $1
-- seconds; stale, no scan has moved it for $2 seconds.
SELECT source, last_id, horizon_id,
       horizon_at <= now() - make_interval(secs => $1) AS settled,
       horizon_at < now() - make_interval(secs => $2) AS stale
FROM cronwright.notification_cursors
ORDER BY source
FOR UPDATE

-- name: newest
-- The newest id of a source (0: none).
SELECT CASE $1::text
           WHEN 'dead_letters' THEN (SELECT max(id) FROM cronwright.dead_letters)
           ELSE (SELECT max(run_id) FROM cronwright.run_history)
       END AS newest

-- name: advance
-- A source read up to $2; with $4, $3 is its new horizon, taken now.
UPDATE cronwright.notification_cursors
SET last_id = $2,
    horizon_id = $3,
    horizon_at = CASE WHEN $4 THEN now() ELSE horizon_at END
WHERE source = $1

-- name: letters
-- Dead letters in ($1, $2], oldest first, at most $3.
SELECT id, job, type, slot, reason, error_class, attempts FROM cronwright.dead_letters
WHERE id > $1 AND id <= $2
ORDER BY id
LIMIT $3

-- name: runs
-- Finished attempts in ($1, $2], in the order they were written, at most $3.
SELECT run_id, job, slot, status, attempt, duration_ms FROM cronwright.run_history
WHERE run_id > $1 AND run_id <= $2
ORDER BY run_id
LIMIT $3

-- name: states
-- The incidents of the asked jobs.
SELECT job, incidents, open_since, open_kinds, problem_slot FROM cronwright.notification_jobs
WHERE job = ANY($1::text[])

-- name: save_states
-- Jobs' incidents (their open kinds comma-separated).
INSERT INTO cronwright.notification_jobs AS s
    (job, incidents, open_since, open_kinds, problem_slot)
SELECT j, i, o, string_to_array(k, ','), p
FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::text[], $5::timestamptz[])
     AS u(j, i, o, k, p)
ON CONFLICT (job) DO UPDATE
SET incidents = EXCLUDED.incidents, open_since = EXCLUDED.open_since,
    open_kinds = EXCLUDED.open_kinds, problem_slot = EXCLUDED.problem_slot
