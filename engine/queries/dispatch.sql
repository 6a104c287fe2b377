-- Sending slots, each at most once (engine/runtime/dispatch.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: claim
-- Claim (job, slot) rows for a send; returns the positions (from 1) of the slots it
-- claimed, in order: integers to read back, not the slots' job names and times.
WITH claimed AS (
    INSERT INTO cronwright.dispatched AS d (job, slot, source, transport, requested_by, rerun_id)
    SELECT j, s, $3, $4, $5, r FROM unnest($1::text[], $2::timestamptz[], $6::text[]) AS u(j, s, r)
    ON CONFLICT (job, slot) DO NOTHING
    RETURNING d.job, d.slot
)
SELECT u.i::integer AS i
FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS u(j, s, i)
JOIN claimed AS c ON c.job = u.j AND c.slot = u.s
ORDER BY u.i

-- name: claim_again
-- The same, re-sending slots already dispatched (an operator's command): the row says
-- who asked last, and for which rerun request.
WITH claimed AS (
    INSERT INTO cronwright.dispatched AS d (job, slot, source, transport, requested_by, rerun_id)
    SELECT j, s, $3, $4, $5, r FROM unnest($1::text[], $2::timestamptz[], $6::text[]) AS u(j, s, r)
    ON CONFLICT (job, slot) DO UPDATE SET source = EXCLUDED.source, transport = EXCLUDED.transport, dispatched_at = now(),
        requested_by = EXCLUDED.requested_by, rerun_id = EXCLUDED.rerun_id
    RETURNING d.job, d.slot
)
SELECT u.i::integer AS i
FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS u(j, s, i)
JOIN claimed AS c ON c.job = u.j AND c.slot = u.s
ORDER BY u.i

-- name: record
-- What cronwright sent of one slot, and who asked (the console's slot page).
SELECT source, transport, dispatched_at, requested_by, rerun_id FROM cronwright.dispatched
WHERE job = $1 AND slot = $2
