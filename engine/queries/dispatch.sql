-- Sending slots, each at most once (engine/runtime/dispatch.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: claim
-- Claim (job, slot) rows for a send ($1 jobs, $2 slots; $3 source, $4 transport) and
-- return the positions (from 1) of the slots it claimed, in order: integers to read back,
-- not the slots' job names and times. Without $5 (force) a slot already dispatched, or
-- inside a runtime pause, is skipped; with it (an operator's command) it is claimed again.
-- With a queue name ($6) the claimed slots are enqueued in the local queue by this same
-- statement ($7 their bodies, $8 the clock's time or NULL for the database's): the
-- Postgres sender's one round trip. A remote sender passes NULL and sends before COMMIT.
-- A skipped conflict is locked, not updated (DO UPDATE ... WHERE false).
WITH wanted AS (
    SELECT u.j, u.s, u.b, u.i
    FROM unnest($1::text[], $2::timestamptz[], $7::text[]) WITH ORDINALITY AS u(j, s, b, i)
    WHERE $5 OR NOT EXISTS (
        SELECT 1 FROM cronwright.pauses AS p
        WHERE p.job = u.j AND p.paused_from <= u.s
          AND (p.resumed_at IS NULL OR u.s < p.resumed_at)
    )
), claimed AS (
    INSERT INTO cronwright.dispatched AS d (job, slot, source, transport)
    SELECT j, s, $3, $4 FROM wanted
    ON CONFLICT (job, slot) DO UPDATE
        SET source = EXCLUDED.source, transport = EXCLUDED.transport, dispatched_at = now()
        WHERE $5
    RETURNING d.job, d.slot
), sent AS (
    SELECT w.* FROM wanted AS w JOIN claimed AS c ON c.job = w.j AND c.slot = w.s
), queued AS (
    INSERT INTO cronwright.queue (queue, body, job, slot, visible_at, enqueued_at)
    SELECT $6, sent.b, sent.j, sent.s, t, t
    FROM sent, coalesce($8::timestamptz, now()) AS t
    WHERE $6::text IS NOT NULL
    ORDER BY sent.i
)
SELECT i::integer AS i FROM sent ORDER BY i
