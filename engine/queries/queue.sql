-- The local queue (engine/adapters/pgqueue.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: put
-- Enqueue: $5 the clock's time, or NULL for the database's; $6 a delay in seconds.
INSERT INTO cronwright.queue (queue, body, job, slot, visible_at, enqueued_at)
SELECT $1, b, j, s, t + make_interval(secs => $6), t
FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS u(b, j, s),
     coalesce($5::timestamptz, now()) AS t

-- name: claim
-- Lease up to $4 visible messages, oldest first (migration 0010's cronwright.queue_claim,
-- a function so that the ready index is read in order whatever the statistics say).
SELECT id, body, attempts, lease_id, claimed_at FROM cronwright.queue_claim($1, $2, $3, $4)

-- name: ack
-- The ack (migration 0006's function, so that its plan is kept: in the job's transaction
-- it travels inlined with COMMIT).
SELECT cronwright.queue_ack($1::bigint, $2::uuid)

-- name: retry
-- Visible again after $5 seconds; a hand-back ($4 = 1) gives its attempt back.
UPDATE cronwright.queue
SET visible_at = coalesce($3::timestamptz, now()) + make_interval(secs => $5),
    lease_id = NULL, attempts = greatest(attempts - $4::integer, 0)
WHERE id = $1 AND lease_id = $2

-- name: release
-- Visible again now, the attempt given back (a consumer stopping).
UPDATE cronwright.queue AS q
SET visible_at = coalesce($3::timestamptz, now()), lease_id = NULL,
    attempts = greatest(q.attempts - 1, 0)
FROM unnest($1::bigint[], $2::uuid[]) AS u(id, lease_id)
WHERE q.id = u.id AND q.lease_id = u.lease_id

-- name: extend
-- The heartbeat. A row being acked right now is locked by the job's transaction: skip
-- it, don't wait.
UPDATE cronwright.queue AS q
SET visible_at = coalesce($3::timestamptz, now()) + make_interval(secs => $4)
FROM (
    SELECT id FROM cronwright.queue
    WHERE (id, lease_id) IN (SELECT * FROM unnest($1::bigint[], $2::uuid[]))
    FOR UPDATE SKIP LOCKED
) AS u
WHERE q.id = u.id

-- name: depth
-- The queue's messages by state.
SELECT count(*) FILTER (WHERE visible_at <= t AND lease_id IS NULL) AS ready,
       count(*) FILTER (WHERE visible_at > t AND lease_id IS NULL) AS delayed,
       count(*) FILTER (WHERE lease_id IS NOT NULL) AS leased
FROM cronwright.queue, coalesce($2::timestamptz, now()) AS t WHERE queue = $1
