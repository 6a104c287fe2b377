-- The tables the jobs read, as the application owns them. Timestamps are UTC
-- `timestamp` (no time zone), as in the system being replaced.

CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS delivery;
CREATE SCHEMA IF NOT EXISTS scoring;
CREATE SCHEMA IF NOT EXISTS lead_intelligence;

-- Append-only: rows are inserted with created_at near the time of the event and
-- never updated or deleted while their day is being rolled up (the hourly job
-- relies on it; see sql/aggregate_hourly.sql).
CREATE TABLE analytics.contact_activity (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    contact_id      uuid NOT NULL,
    event_type      varchar(100) NOT NULL,
    event_source    varchar(100),
    event_data      jsonb,
    created_at      timestamp NOT NULL
);
-- As the application reads it: a contact's timeline, an org's activity feed, and
-- "has this contact done X" segment checks.
CREATE INDEX contact_activity_contact_idx
    ON analytics.contact_activity (contact_id, created_at);
CREATE INDEX contact_activity_org_idx
    ON analytics.contact_activity (organization_id, created_at);
CREATE INDEX contact_activity_org_type_contact_idx
    ON analytics.contact_activity (organization_id, event_type, contact_id, created_at);
-- Time-range reads (the jobs, retention). Covering, so that an hour's rollup is an
-- index-only scan of that hour's entries.
CREATE INDEX contact_activity_created_idx
    ON analytics.contact_activity (created_at)
    INCLUDE (organization_id, event_type, contact_id);

CREATE TABLE delivery.sending_domains (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    domain          varchar(255) NOT NULL,
    status          varchar(20) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'verified', 'failed')),
    verified_at     timestamp,
    created_at      timestamp NOT NULL,
    UNIQUE (organization_id, domain)
);
CREATE INDEX sending_domains_status_idx ON delivery.sending_domains (status, created_at);

CREATE TABLE scoring.lead_scores (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    contact_id      uuid NOT NULL,
    total_score     integer NOT NULL,
    grade           varchar(2),
    scored_at       timestamp NOT NULL
);
-- A contact's latest score first.
CREATE INDEX lead_scores_contact_idx
    ON scoring.lead_scores (organization_id, contact_id, scored_at DESC);

CREATE TABLE lead_intelligence.enrichment_jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    contact_id       uuid NOT NULL,
    status           varchar(20) NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'exhausted')),
    total_cost       numeric(10, 4),
    total_latency_ms integer,
    created_at       timestamp NOT NULL,
    completed_at     timestamp
);
CREATE INDEX enrichment_jobs_created_idx ON lead_intelligence.enrichment_jobs (created_at);
CREATE INDEX enrichment_jobs_contact_idx
    ON lead_intelligence.enrichment_jobs (organization_id, contact_id, created_at);
