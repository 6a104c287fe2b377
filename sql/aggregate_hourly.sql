{#
analytics.aggregate-hourly: the day-so-far rollup per (org, date, event_type) in
analytics.event_aggregates, channel 'hourly_rollup': count = events, unique_count =
distinct contacts.

The run at slot T rolls up the UTC day D of its window [T-1h, T) (so the 00:00 run
finishes the previous day). analytics.event_rollup_days records how far D's rows go
(aggregated_until); the run adds the events in [aggregated_until, T), normally just
its window plus any hour a failed or missing run left behind, and moves the mark to
T. Events are added once: replays, duplicates and concurrent runs add nothing, and
a late run of an earlier slot finds nothing left to add, so it never rolls the day back.

Cost follows the new events, not the day's: they are an index-only range scan of
contact_activity_created_idx, and "already counted today for this org and type" is one
index-only probe of contact_activity_org_type_contact_idx per new event, bounded to the
part of the day already rolled up (bench/hourly.py measures it).

Missed windows are re-aggregated by the next successful run, even across days: a day
whose last hours were never rolled up (its 00:00 run failed), and every day an outage
swallowed whole since the last day ever rolled up, are finished by pass 1 below before
the slot's own day. Normally pass 1 finds nothing to do. The very first run does not
backfill history: days before the first day ever rolled up are left alone.

Assumes contact_activity is append-only and an hour's events are in when its slot
runs: an event inserted later with a created_at before the mark is not counted.
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

{% for catch_up in [true, false] %}
{% if catch_up %}
-- Pass 1: lock every unfinished day before the window's day, to finish it.
UPDATE analytics.event_rollup_days AS d SET date = d.date
WHERE d.date < ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
  AND d.aggregated_until < (d.date + 1)::timestamp;
{% else %}
-- Pass 2: the window's day, up to the slot.
-- Lock the day's row first. Concurrent runs for the day queue here, and the next
-- statement (READ COMMITTED: a new snapshot) sees what the previous holder committed.
-- Under REPEATABLE READ the loser gets a serialization failure instead (retried).
INSERT INTO analytics.event_rollup_days AS d (date, aggregated_until)
VALUES (({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
        ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date::timestamp)
ON CONFLICT (date) DO UPDATE SET date = d.date;
{% endif %}

WITH day AS (
{% if catch_up %}
    SELECT date, date::timestamp AS day_start, aggregated_until, (date + 1)::timestamp AS until
    FROM analytics.event_rollup_days
    WHERE date < ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
      AND aggregated_until < (date + 1)::timestamp
{% else %}
    SELECT date, date::timestamp AS day_start, aggregated_until,
           ({{ window_end }}::timestamptz AT TIME ZONE 'UTC') AS until
    FROM analytics.event_rollup_days
    WHERE date = ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
{% endif %}
),
per_group AS (
    -- A contact counts once per (org, type) and day: in the new events it is distinct,
    -- and it must have no event of that type in the part of the day already rolled up.
    SELECT day.date, a.organization_id, a.event_type, count(*) AS events,
           count(DISTINCT a.contact_id) FILTER (WHERE NOT EXISTS (
               SELECT 1
               FROM analytics.contact_activity AS p
               WHERE p.organization_id = a.organization_id
                 AND p.event_type = a.event_type
                 AND p.contact_id = a.contact_id
                 AND p.created_at >= day.day_start
                 AND p.created_at < day.aggregated_until
           )) AS first_seen
    FROM day
    JOIN analytics.contact_activity AS a
      ON a.created_at >= day.aggregated_until AND a.created_at < day.until
    GROUP BY day.date, a.organization_id, a.event_type
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
ON CONFLICT (organization_id, date, event_type, channel) DO UPDATE
SET count = ea.count + EXCLUDED.count,
    unique_count = ea.unique_count + EXCLUDED.unique_count;
{% endfor %}
