-- The scheduling core's questions (engine/runtime/slotstore.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: register
-- Record jobs never seen as first seen at $2; every asked job's first-seen time.
WITH added AS (
    INSERT INTO cronwright.jobs (job, first_seen)
    SELECT j, $2 FROM unnest($1::text[]) AS j
    ON CONFLICT (job) DO NOTHING
    RETURNING job, first_seen
)
SELECT job, first_seen FROM added
UNION ALL
SELECT job, first_seen FROM cronwright.jobs WHERE job = ANY($1::text[])

-- name: first_seen
-- Each asked job's first-seen time (read only).
SELECT job, first_seen FROM cronwright.jobs WHERE job = ANY($1::text[])

-- name: facts
-- What is recorded about each asked job, then about each asked (job, slot) pair, in one
-- statement whatever their number: a row per job of $1 (i NULL) with its first sighting
-- and its open runtime pause (one at most: pauses_one_open_idx), then a row per pair i,
-- ($2[i], $3[i]), in order, with its facts. $4[i] asks pair i's newer-slot question,
-- asked only for the pairs that want it (a `latest` job's), so that other jobs pay
-- nothing for it. A caller that wants no job's facts passes no job.
SELECT j.job, s.first_seen, o.paused_from AS paused_since, NULL::bigint AS i,
       NULL::text AS ledger, NULL::integer AS attempts, NULL::boolean AS dispatched,
       NULL::boolean AS paused, NULL::boolean AS newer_active
FROM unnest($1::text[]) AS j(job)
LEFT JOIN cronwright.jobs AS s ON s.job = j.job
LEFT JOIN cronwright.pauses AS o ON o.job = j.job AND o.resumed_at IS NULL
UNION ALL
SELECT NULL, NULL, NULL, w.i,
       r.status, coalesce(r.attempt, 0),
       d.job IS NOT NULL,
       EXISTS (
           SELECT 1 FROM cronwright.pauses AS p
           WHERE p.job = w.job AND p.paused_from <= w.slot
             AND (p.resumed_at IS NULL OR w.slot < p.resumed_at)
       ),
       w.latest AND (
           EXISTS (SELECT 1 FROM cronwright.runs AS n
                   WHERE n.job = w.job AND n.slot > w.slot
                     AND n.status NOT IN ('paused', 'superseded'))
           OR EXISTS (SELECT 1 FROM cronwright.dispatched AS n
                      WHERE n.job = w.job AND n.slot > w.slot)
       )
FROM unnest($2::text[], $3::timestamptz[], $4::boolean[]) WITH ORDINALITY AS w(job, slot, latest, i)
LEFT JOIN cronwright.runs AS r ON r.job = w.job AND r.slot = w.slot
LEFT JOIN cronwright.dispatched AS d ON d.job = w.job AND d.slot = w.slot
ORDER BY i NULLS FIRST

-- name: unrecorded
-- The positions (from 1) of the asked (job, slot) pairs with no ledger row and never
-- dispatched, in order: the only slots whose status can still be missing or pending
-- (a recorded slot's status is final: the facts above). An anti-join, a probe or two per
-- pair and no row back for the rest: a steady pass of the scheduling core asks this, then
-- the facts of what it returned, if anything. Pair i is job $1[i] at slot $3[$2[i]]: a
-- pass asks about hundreds of jobs at a few distinct slots, and binding each pair's
-- timestamp cost more than the anti-join.
SELECT w.i::integer AS i
FROM (
    SELECT u.job, ($3::timestamptz[])[u.s] AS slot, u.i
    FROM unnest($1::text[], $2::integer[]) WITH ORDINALITY AS u(job, s, i)
) AS w
WHERE NOT EXISTS (
    SELECT 1 FROM cronwright.dispatched AS d WHERE d.job = w.job AND d.slot = w.slot
) AND NOT EXISTS (
    SELECT 1 FROM cronwright.runs AS r WHERE r.job = w.job AND r.slot = w.slot
)
ORDER BY w.i
