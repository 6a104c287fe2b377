{#
analytics.score-distribution: per org, the distribution of each contact's latest
lead score recorded before the slot, dated the slot's UTC day. scoring.lead_scores
is read as a history (the newest row per contact wins), so a replay at any later
time sees the same snapshot. A run replaces the day's rows: an org with no score left
loses its row.
#}
WITH fresh AS (
    SELECT s.organization_id,
           ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
           round(avg(s.total_score), 2),
           min(s.total_score),
           max(s.total_score),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY s.total_score),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY s.total_score),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY s.total_score),
           count(*)
    FROM (
        SELECT DISTINCT ON (organization_id, contact_id) organization_id, total_score
        FROM scoring.lead_scores
        WHERE scored_at < ({{ slot }}::timestamptz AT TIME ZONE 'UTC')
        ORDER BY organization_id, contact_id, scored_at DESC, id DESC
    ) AS s
    GROUP BY s.organization_id
),
vanished AS (
    DELETE FROM analytics.daily_score_distribution AS v
    WHERE v.date = ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
      AND NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.organization_id = v.organization_id)
)
INSERT INTO analytics.daily_score_distribution AS d
    (organization_id, date, avg_score, min_score, max_score, p50, p90, p95, total_contacts)
SELECT * FROM fresh
ON CONFLICT (organization_id, date) DO UPDATE
SET avg_score = EXCLUDED.avg_score,
    min_score = EXCLUDED.min_score,
    max_score = EXCLUDED.max_score,
    p50 = EXCLUDED.p50,
    p90 = EXCLUDED.p90,
    p95 = EXCLUDED.p95,
    total_contacts = EXCLUDED.total_contacts
WHERE (d.avg_score, d.min_score, d.max_score, d.p50, d.p90, d.p95, d.total_contacts)
      IS DISTINCT FROM
      (EXCLUDED.avg_score, EXCLUDED.min_score, EXCLUDED.max_score, EXCLUDED.p50,
       EXCLUDED.p90, EXCLUDED.p95, EXCLUDED.total_contacts);
