{#
analytics.aggregate-hourly: the day-so-far rollup per (org, date, event_type) in
analytics.event_aggregates, channel 'hourly_rollup': count = events, unique_count =
distinct contacts.

The run at slot T rolls up the UTC day D of its window [T-1h, T) (so the 00:00 run
finishes the previous day). analytics.event_rollup_days records how far D's rows go
(aggregated_until); the run adds the events in [aggregated_until, T) and moves the mark
to T. Events are added once: replays, duplicates and concurrent runs add nothing, and a
late run of an earlier slot finds nothing left to add, so it never rolls the day back.

Cost follows the new events, not the day's, nor the table's: they are an index-only
range scan of contact_activity_created_idx, grouped per (org, type, contact) in the order
of a hash of that triple, and "already counted today for this org and type" is one
index-only probe of contact_activity_day_triple_idx (keyed on the UTC day, the same hash,
then created_at) per distinct triple, bounded to the part of the day already rolled up.
The probes come in the index's order, so each one descends through pages the previous
one just read, all inside the day's part of the index (bench/hourly.py measures it, at
1M and 10M events a day).

Settling. Adding only new events misses an event whose transaction commits after the
run that covered its created_at (a long transaction, a retried insert). So day D is
settled by the first run at or after D+1 00:00 + settle_seconds (the job's window; 3600
by default: the 01:00 run): it re-aggregates D in full from the source and REPLACES D's
rows (groups that vanished are deleted), then marks the day settled. After that D equals
the source as it stood at the settling run, late events included.

Catch-up is bounded. Days an outage swallowed (pass 0 gives them a row), days whose last
hours were never rolled up, and days due to settle are "pending". Each run re-aggregates
at most params.catch_up_days of them, oldest first: one statement picks and locks them,
then one statement per day re-aggregates it with a fresh snapshot. The budget is a count of days, not
a time read from the clock, so what a run does stays a function of its slot and the
data; size it so that that many full days fit well inside timeout_seconds (a day of 1M
events takes seconds: bench/settle.py). Every run makes progress (at least one day while
any is pending), each day is replaced whole in one statement, so no day is ever
half-added, and a 30-day gap heals over successive runs. Pending days are recomputed
before the window's own day is extended; the very first run does not backfill history.

Rerun (rerun = true): the window's day is re-aggregated from the source up to T (or up
to its mark, when later runs already went further: a rerun never rolls a day back) and
its rows are replaced. Replaying a rerun, or running two at once (the day's row lock
queues them and the second re-reads what the first committed), leaves the same rows.
#}
-- The planner cannot know how far the day's mark is and overestimates the rows, which
-- would buy a JIT compilation that costs more than an hour's rows take to process.
SET LOCAL jit = off;

-- Pass 0: days an outage swallowed whole (no row yet) after the last day rolled up.
INSERT INTO analytics.event_rollup_days (date, aggregated_until)
SELECT d::date, d
FROM generate_series(
         (SELECT max(date) + 1 FROM analytics.event_rollup_days)::timestamp,
         (({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date - 1)::timestamp,
         interval '1 day') AS d
ON CONFLICT (date) DO NOTHING;

-- Pass 1: flag and lock the oldest pending days (unfinished before the window's day, or
-- due to settle), at most params.catch_up_days of them (at least one).
UPDATE analytics.event_rollup_days AS d SET recomputing = true
WHERE d.date IN (
    SELECT p.date
    FROM analytics.event_rollup_days AS p
    WHERE NOT p.settled
      AND ((p.date < ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
            AND p.aggregated_until < (p.date + 1)::timestamp)
           OR (p.date + 1)::timestamp + {{ settle_seconds }}::int * interval '1 second'
              <= ({{ slot }}::timestamptz AT TIME ZONE 'UTC'))
    ORDER BY p.date
    LIMIT {{ [params.catch_up_days, 1] | max }}::int  -- at least one: every run progresses
    FOR UPDATE
);
{% if rerun %}

-- Rerun: flag and lock the window's day too (after the older days: locks go oldest first).
INSERT INTO analytics.event_rollup_days AS d (date, aggregated_until, recomputing)
VALUES (({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
        ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date::timestamp,
        true)
ON CONFLICT (date) DO UPDATE SET recomputing = true;
{% endif %}

{% for _ in range([params.catch_up_days, 1] | max + (1 if rerun else 0)) %}
-- Re-aggregate the oldest day this transaction flagged (none: nothing happens) from the
-- source with a fresh snapshot, replace its rows, move its mark (which clears the flag),
-- and settle it if its settling time has come. Once per day the run may re-aggregate.
WITH day AS MATERIALIZED (
    SELECT date,
           CASE WHEN (date + 1)::timestamp <= ({{ window_end }}::timestamptz AT TIME ZONE 'UTC')
                THEN (date + 1)::timestamp
                ELSE greatest(aggregated_until,
                              ({{ window_end }}::timestamptz AT TIME ZONE 'UTC'))
           END AS until
    FROM analytics.event_rollup_days
    WHERE recomputing
    ORDER BY date
    LIMIT 1
),
fresh AS (
    -- One index-only scan of the day in contact_activity_day_idx, already in group order:
    -- no sort. The day is an equality on the index's first column; the end (a partial
    -- day only for a rerun) is a filter, so that the planner keeps to that index.
    SELECT (SELECT date FROM day) AS date, a.organization_id,
           a.event_type COLLATE "C" AS event_type,
           count(*) AS events, count(DISTINCT a.contact_id) AS contacts
    FROM analytics.contact_activity AS a
    WHERE a.created_at::date = (SELECT date FROM day)
      AND (a.created_at < (SELECT until FROM day)) IS TRUE
      -- No day flagged (nearly every run): a one-time filter skips the scan, which a
      -- generic plan may otherwise make a sequential scan of the whole table.
      AND EXISTS (SELECT FROM day)
    GROUP BY a.organization_id, a.event_type COLLATE "C"
),
vanished AS (
    DELETE FROM analytics.event_aggregates AS ea
    USING day
    WHERE ea.date = day.date
      AND ea.channel = 'hourly_rollup'
      -- NOT IN: one hash of the day's groups (NOT EXISTS became a nested loop here).
      AND (ea.organization_id, ea.event_type) NOT IN (SELECT f.organization_id, f.event_type
                                                      FROM fresh AS f)
),
mark AS (
    UPDATE analytics.event_rollup_days AS d
    SET aggregated_until = day.until,
        recomputing = false,
        settled = d.settled
                  OR (day.until = (d.date + 1)::timestamp
                      AND (d.date + 1)::timestamp + {{ settle_seconds }}::int * interval '1 second'
                          <= ({{ slot }}::timestamptz AT TIME ZONE 'UTC'))
    FROM day
    WHERE d.date = day.date
)
INSERT INTO analytics.event_aggregates AS ea
    (organization_id, date, event_type, channel, count, unique_count)
SELECT f.organization_id, f.date, f.event_type, 'hourly_rollup', f.events, f.contacts
FROM fresh AS f
ON CONFLICT (organization_id, date, event_type, channel) DO UPDATE
SET count = EXCLUDED.count,
    unique_count = EXCLUDED.unique_count
WHERE (ea.count, ea.unique_count) IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.unique_count);
{% endfor %}
{% if not rerun %}
-- Pass 2: the window's day, up to the slot: add the new events.
-- Lock the day's row first. Concurrent runs for the day queue here, and the next
-- statement (READ COMMITTED: a new snapshot) sees what the previous holder committed.
-- Under REPEATABLE READ the loser gets a serialization failure instead (retried).
INSERT INTO analytics.event_rollup_days AS d (date, aggregated_until)
VALUES (({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
        ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date::timestamp)
ON CONFLICT (date) DO UPDATE SET date = d.date;

-- The statement below sorts only where it says ORDER BY: the new events into the order
-- of the probes' index, and the rollup rows into the order of the upsert's key. Its
-- other grouping, per (org, type), hashes: as a sort (the planner's choice, whatever
-- its estimates) it cost about as much as sorting the new events (bench/hourly.py).
-- The setting lasts to the end of the transaction: this is the template's last
-- statement, and what the executor sends after it (the ledger's writes at commit) goes
-- by key and sorts nothing.
SET LOCAL enable_sort = off;

WITH day AS MATERIALIZED (
    SELECT date, aggregated_until,
           ({{ window_end }}::timestamptz AT TIME ZONE 'UTC') AS until
    FROM analytics.event_rollup_days
    WHERE date = ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
),
per_contact AS (
    -- One row per (org, type, contact) of the new events, in the order of its hash, the
    -- key of contact_activity_day_triple_idx after the day
    -- (sql/migrations/0005_day_triple_index.sql): the probes walk the day's part of that
    -- index in order (in no order, each costs about half as much again). The contact
    -- counts for its (org, type) if it has no event of that type in the part of the day
    -- already rolled up: one index-only probe, which finds the hash's entries of the day
    -- before aggregated_until and compares each one's triple (INCLUDEd in the index), so
    -- a hash collision never changes a count. IS NOT DISTINCT FROM is = on these NOT
    -- NULL columns; with = the planner would take the wider, slower
    -- contact_activity_org_type_contact_idx. OFFSET 0 keeps the probes here, in this
    -- order, whatever the grouping below does with the rows.
    SELECT t.organization_id, t.event_type, t.events,
           NOT EXISTS (
               SELECT 1
               FROM analytics.contact_activity AS p
               WHERE p.created_at::date = (SELECT date FROM day)
                 AND hashtextextended(p.event_type, uuid_hash_extended(p.contact_id,
                         uuid_hash_extended(p.organization_id, 0))) = t.hash
                 AND p.created_at < (SELECT aggregated_until FROM day)
                 AND p.organization_id IS NOT DISTINCT FROM t.organization_id
                 AND p.event_type IS NOT DISTINCT FROM t.event_type
                 AND p.contact_id IS NOT DISTINCT FROM t.contact_id
           ) AS first_seen
    FROM (
        SELECT hashtextextended(n.event_type, uuid_hash_extended(n.contact_id,
                   uuid_hash_extended(n.organization_id, 0))) AS hash,
               n.organization_id, n.event_type, n.contact_id, count(*) AS events
        FROM (
            -- The new events: an index-only range scan of contact_activity_created_idx.
            -- OFFSET 0: the ORDER BY below must be a sort of these, never a read of the
            -- day's part of the triple index in its order.
            SELECT a.organization_id, a.event_type, a.contact_id
            FROM analytics.contact_activity AS a
            WHERE a.created_at >= (SELECT aggregated_until FROM day)
              AND a.created_at < (SELECT until FROM day)
            OFFSET 0
        ) AS n
        GROUP BY 1, 2, 3, 4
        ORDER BY 1
    ) AS t
    OFFSET 0
),
per_group AS (
    SELECT (SELECT date FROM day) AS date, c.organization_id,
           c.event_type COLLATE "C" AS event_type,
           sum(c.events)::bigint AS events,
           count(*) FILTER (WHERE c.first_seen) AS first_seen
    FROM per_contact AS c
    GROUP BY c.organization_id, c.event_type COLLATE "C"
),
progress AS (
    UPDATE analytics.event_rollup_days AS d
    SET aggregated_until = day.until
    FROM day
    WHERE d.date = day.date
      AND d.aggregated_until < day.until
    RETURNING d.date
)
-- Only days whose mark this statement moved get their events added: a day another run
-- finished meanwhile adds nothing twice.
INSERT INTO analytics.event_aggregates AS ea
    (organization_id, date, event_type, channel, count, unique_count)
SELECT g.organization_id, g.date, g.event_type, 'hourly_rollup', g.events, g.first_seen
FROM per_group AS g
WHERE g.date IN (SELECT date FROM progress)
-- In the order of the rollup's key, so that consecutive upserts find neighbouring rows.
ORDER BY g.organization_id, g.event_type
ON CONFLICT (organization_id, date, event_type, channel) DO UPDATE
SET count = ea.count + EXCLUDED.count,
    unique_count = ea.unique_count + EXCLUDED.unique_count;
{% endif %}
