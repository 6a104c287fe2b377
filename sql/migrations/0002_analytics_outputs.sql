-- The tables the jobs write. Each has the natural key its job upserts on.

-- Rollups per org, date and event type. `channel` says which job owns a row:
-- 'hourly_rollup' rows are the day so far (analytics.aggregate-hourly);
-- 'monthly_summary' rows are a calendar month, dated its first day, with event_type
-- 'monthly:{event_type}' (analytics.monthly-usage-summary).
CREATE TABLE analytics.event_aggregates (
    organization_id uuid         NOT NULL,
    date            date         NOT NULL,
    event_type      varchar(120) NOT NULL,
    channel         varchar(50)  NOT NULL,
    count           bigint       NOT NULL CHECK (count >= 0),
    unique_count    bigint       NOT NULL CHECK (unique_count >= 0),
    PRIMARY KEY (organization_id, date, event_type, channel)
) WITH (fillfactor = 70);  -- the day's rows are updated every hour: room for HOT updates

-- How far into each UTC day the hourly rollup has got: the day's 'hourly_rollup'
-- rows hold exactly the events in [date, aggregated_until). Each run moves the
-- mark to its slot, never back. The row is also the lock that serialises the day's runs.
CREATE TABLE analytics.event_rollup_days (
    date             date      PRIMARY KEY,
    aggregated_until timestamp NOT NULL,
    CHECK (aggregated_until >= date AND aggregated_until <= date + 1)
);

CREATE TABLE analytics.campaign_daily_stats (
    campaign_id     varchar(100) NOT NULL,  -- contact_activity.event_source
    organization_id uuid         NOT NULL,
    date            date         NOT NULL,
    sent            integer      NOT NULL DEFAULT 0,
    delivered       integer      NOT NULL DEFAULT 0,
    opened          integer      NOT NULL DEFAULT 0,
    unique_opened   integer      NOT NULL DEFAULT 0,
    clicked         integer      NOT NULL DEFAULT 0,
    unique_clicked  integer      NOT NULL DEFAULT 0,
    bounced         integer      NOT NULL DEFAULT 0,
    complained      integer      NOT NULL DEFAULT 0,
    unsubscribed    integer      NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, organization_id, date)
);
CREATE INDEX campaign_daily_stats_org_idx ON analytics.campaign_daily_stats (organization_id, date);

CREATE TABLE analytics.daily_score_distribution (
    organization_id uuid             NOT NULL,
    date            date             NOT NULL,
    avg_score       numeric(5, 2)    NOT NULL,
    min_score       integer          NOT NULL,
    max_score       integer          NOT NULL,
    p50             double precision NOT NULL,
    p90             double precision NOT NULL,
    p95             double precision NOT NULL,
    total_contacts  integer          NOT NULL,
    PRIMARY KEY (organization_id, date)
);
COMMENT ON TABLE analytics.daily_score_distribution IS
    'Each contact''s latest lead score before the slot (04:00 UTC), per org; percentiles by percentile_cont';

CREATE TABLE analytics.enrichment_metrics (
    organization_id uuid           NOT NULL,
    date            date           NOT NULL,
    total_enriched  integer        NOT NULL,
    success_rate    numeric(5, 2)  NOT NULL,
    avg_cost        numeric(10, 4),
    avg_freshness   numeric(10, 2),
    PRIMARY KEY (organization_id, date)
);
COMMENT ON COLUMN analytics.enrichment_metrics.total_enriched IS
    'Enrichment jobs created that UTC day, whatever their status';
COMMENT ON COLUMN analytics.enrichment_metrics.success_rate IS
    'Percent of those jobs with status completed';
COMMENT ON COLUMN analytics.enrichment_metrics.avg_cost IS
    'Mean total_cost of those jobs that have one';
COMMENT ON COLUMN analytics.enrichment_metrics.avg_freshness IS
    'Hours from request to fresh data: mean of completed_at - created_at over the completed jobs; NULL if none';
