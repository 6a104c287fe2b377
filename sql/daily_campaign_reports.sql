{#
analytics.generate-daily-reports: one row per (campaign, org, UTC day) in
analytics.campaign_daily_stats from the day's email events that carry a campaign id
in event_source. The window is the previous UTC day; a run (a replay, a rerun)
recomputes the day and replaces its rows: a campaign whose events are gone loses its row.
#}
WITH fresh AS (
    SELECT a.event_source AS campaign_id,
           a.organization_id,
           ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
           count(*) FILTER (WHERE a.event_type = 'email_sent'),
           count(*) FILTER (WHERE a.event_type = 'email_delivered'),
           count(*) FILTER (WHERE a.event_type = 'email_opened'),
           count(DISTINCT a.contact_id) FILTER (WHERE a.event_type = 'email_opened'),
           count(*) FILTER (WHERE a.event_type = 'email_clicked'),
           count(DISTINCT a.contact_id) FILTER (WHERE a.event_type = 'email_clicked'),
           count(*) FILTER (WHERE a.event_type = 'email_bounced'),
           count(*) FILTER (WHERE a.event_type = 'email_complained'),
           count(*) FILTER (WHERE a.event_type = 'email_unsubscribed')
    FROM analytics.contact_activity AS a
    WHERE a.created_at >= ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')
      AND a.created_at < ({{ window_end }}::timestamptz AT TIME ZONE 'UTC')
      AND a.event_source IS NOT NULL
      AND a.event_type IN ('email_sent', 'email_delivered', 'email_opened', 'email_clicked',
                           'email_bounced', 'email_complained', 'email_unsubscribed')
    GROUP BY a.event_source, a.organization_id
),
vanished AS (
    DELETE FROM analytics.campaign_daily_stats AS v
    WHERE v.date = ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
      AND NOT EXISTS (SELECT 1 FROM fresh AS f
                      WHERE f.campaign_id = v.campaign_id
                        AND f.organization_id = v.organization_id)
)
INSERT INTO analytics.campaign_daily_stats AS s
    (campaign_id, organization_id, date, sent, delivered, opened, unique_opened,
     clicked, unique_clicked, bounced, complained, unsubscribed)
SELECT * FROM fresh
ON CONFLICT (campaign_id, organization_id, date) DO UPDATE
SET sent = EXCLUDED.sent,
    delivered = EXCLUDED.delivered,
    opened = EXCLUDED.opened,
    unique_opened = EXCLUDED.unique_opened,
    clicked = EXCLUDED.clicked,
    unique_clicked = EXCLUDED.unique_clicked,
    bounced = EXCLUDED.bounced,
    complained = EXCLUDED.complained,
    unsubscribed = EXCLUDED.unsubscribed
-- an unchanged row is left alone, so a replay rewrites nothing
WHERE (s.sent, s.delivered, s.opened, s.unique_opened, s.clicked, s.unique_clicked,
       s.bounced, s.complained, s.unsubscribed)
      IS DISTINCT FROM
      (EXCLUDED.sent, EXCLUDED.delivered, EXCLUDED.opened, EXCLUDED.unique_opened,
       EXCLUDED.clicked, EXCLUDED.unique_clicked, EXCLUDED.bounced, EXCLUDED.complained,
       EXCLUDED.unsubscribed);
