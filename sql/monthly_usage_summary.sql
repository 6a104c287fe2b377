{#
analytics.monthly-usage-summary: per org and event type, the previous calendar
month's events and distinct contacts, as analytics.event_aggregates rows with
event_type 'monthly:{event_type}', date = the month's first day and channel
'monthly_summary'. A run (a replay, a rerun) recomputes the month and replaces its rows:
a group whose events are gone loses its row.
#}
WITH fresh AS (
    SELECT a.organization_id,
           ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
           'monthly:' || a.event_type AS event_type,
           'monthly_summary',
           count(*),
           count(DISTINCT a.contact_id)
    FROM analytics.contact_activity AS a
    WHERE a.created_at >= ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')
      AND a.created_at < ({{ window_end }}::timestamptz AT TIME ZONE 'UTC')
    GROUP BY a.organization_id, a.event_type
),
vanished AS (
    DELETE FROM analytics.event_aggregates AS v
    WHERE v.date = ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
      AND v.channel = 'monthly_summary'
      AND NOT EXISTS (SELECT 1 FROM fresh AS f
                      WHERE f.organization_id = v.organization_id
                        AND f.event_type = v.event_type)
)
INSERT INTO analytics.event_aggregates AS ea
    (organization_id, date, event_type, channel, count, unique_count)
SELECT * FROM fresh
ON CONFLICT (organization_id, date, event_type, channel) DO UPDATE
SET count = EXCLUDED.count,
    unique_count = EXCLUDED.unique_count
WHERE (ea.count, ea.unique_count) IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.unique_count);
