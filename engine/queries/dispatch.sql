-- Sending slots, each at most once (engine/runtime/dispatch.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: claim
-- Claim (job, slot) rows for a send ($1 jobs, $2 slots; $3 source, $4 transport; $6 the
-- operator who asked, $7 each slot's rerun request id) and return the positions (from 1)
-- of the slots it claimed, in order: integers to read back, not the slots' job names and
-- times. Without $5 (force) a slot already dispatched, or inside a runtime pause, is
-- skipped; with it (an operator's command) it is claimed again, and the row says who
-- asked last and for which rerun request.
-- With a queue name ($8) the claimed slots are enqueued in the local queue by this same
-- statement ($9 their bodies, $10 the clock's time or NULL for the database's): the
-- Postgres sender's one round trip. A remote sender passes NULL and sends before COMMIT.
-- A skipped conflict is locked, not updated (DO UPDATE ... WHERE false).
WITH wanted AS (
    SELECT u.j, u.s, u.r, u.b, u.i
    FROM unnest($1::text[], $2::timestamptz[], $7::text[], $9::text[])
        WITH ORDINALITY AS u(j, s, r, b, i)
    WHERE $5 OR NOT EXISTS (
        SELECT 1 FROM cronwright.pauses AS p
        WHERE p.job = u.j AND p.paused_from <= u.s
          AND (p.resumed_at IS NULL OR u.s < p.resumed_at)
    )
), claimed AS (
    INSERT INTO cronwright.dispatched AS d (job, slot, source, transport, requested_by, rerun_id)
    SELECT j, s, $3, $4, $6, r FROM wanted
    ON CONFLICT (job, slot) DO UPDATE
        SET source = EXCLUDED.source, transport = EXCLUDED.transport, dispatched_at = now(),
            requested_by = EXCLUDED.requested_by, rerun_id = EXCLUDED.rerun_id
        WHERE $5
    RETURNING d.job, d.slot
), sent AS (
    SELECT w.* FROM wanted AS w JOIN claimed AS c ON c.job = w.j AND c.slot = w.s
), queued AS (
    INSERT INTO cronwright.queue (queue, body, job, slot, visible_at, enqueued_at)
    SELECT $8, sent.b, sent.j, sent.s, t, t
    FROM sent, coalesce($10::timestamptz, now()) AS t
    WHERE $8::text IS NOT NULL
    ORDER BY sent.i
)
SELECT i::integer AS i FROM sent ORDER BY i

-- name: record
-- What cronwright sent of one slot, and who asked (the console's slot page).
SELECT source, transport, dispatched_at, requested_by, rerun_id FROM cronwright.dispatched
WHERE job = $1 AND slot = $2
