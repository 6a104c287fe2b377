{#
analytics.enrichment-metrics: per org, the enrichment jobs created in the previous
UTC day: how many, the percent completed, their mean cost, and their freshness, the
mean hours from request (created_at) to fresh data (completed_at) over the completed
ones. "Completed" means completed before the slot, so the result is a function of the
slot, not of when the run happens: a late run or a replay records the same numbers. A
run replaces the day's rows: an org whose jobs are gone loses its row.
#}
WITH fresh AS (
    SELECT j.organization_id,
           ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,
           count(*),
           round(100.0 * count(*) FILTER (
                     WHERE j.status = 'completed'
                       AND j.completed_at < ({{ slot }}::timestamptz AT TIME ZONE 'UTC')
                 ) / count(*), 2),
           round(avg(j.total_cost), 4),
           round(avg(extract(epoch FROM j.completed_at - j.created_at) / 3600) FILTER (
                     WHERE j.status = 'completed'
                       AND j.completed_at < ({{ slot }}::timestamptz AT TIME ZONE 'UTC')
                 ), 2)
    FROM lead_intelligence.enrichment_jobs AS j
    WHERE j.created_at >= ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')
      AND j.created_at < ({{ window_end }}::timestamptz AT TIME ZONE 'UTC')
    GROUP BY j.organization_id
),
vanished AS (
    DELETE FROM analytics.enrichment_metrics AS v
    WHERE v.date = ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date
      AND NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.organization_id = v.organization_id)
)
INSERT INTO analytics.enrichment_metrics AS m
    (organization_id, date, total_enriched, success_rate, avg_cost, avg_freshness)
SELECT * FROM fresh
ON CONFLICT (organization_id, date) DO UPDATE
SET total_enriched = EXCLUDED.total_enriched,
    success_rate = EXCLUDED.success_rate,
    avg_cost = EXCLUDED.avg_cost,
    avg_freshness = EXCLUDED.avg_freshness
WHERE (m.total_enriched, m.success_rate, m.avg_cost, m.avg_freshness)
      IS DISTINCT FROM
      (EXCLUDED.total_enriched, EXCLUDED.success_rate, EXCLUDED.avg_cost,
       EXCLUDED.avg_freshness);
