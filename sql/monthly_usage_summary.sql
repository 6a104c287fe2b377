{#
analytics.monthly-usage-summary: per org and event type, the previous calendar
month's events and distinct contacts, as analytics.event_aggregates rows with
event_type 'monthly:{event_type}', date = the month's first day and channel
'monthly_summary'. A replay recomputes the same month and overwrites the same rows.
#}
INSERT INTO analytics.event_aggregates AS ea
    (organization_id, date, event_type, channel, count, unique_count)
SELECT a.organization_id,
       ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
       'monthly:' || a.event_type,
       'monthly_summary',
       count(*),
       count(DISTINCT a.contact_id)
FROM analytics.contact_activity AS a
WHERE a.created_at >= ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')
  AND a.created_at < ({{ window_end }}::timestamptz AT TIME ZONE 'UTC')
GROUP BY a.organization_id, a.event_type
ON CONFLICT (organization_id, date, event_type, channel) DO UPDATE
SET count = EXCLUDED.count,
    unique_count = EXCLUDED.unique_count
WHERE (ea.count, ea.unique_count) IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.unique_count);
