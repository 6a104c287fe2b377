-- Demo data for 2026-10-30 .. 2026-10-31 (UTC), deterministic: ids come from md5, not random().
-- 5 organisations, 200 contacts, ~6,000 events, sending domains, lead scores, enrichment jobs.
INSERT INTO analytics.contact_activity (organization_id, contact_id, event_type, event_source, created_at)
SELECT md5('org' || (i % 5))::uuid,
       md5('contact' || (i % 200))::uuid,
       (ARRAY['email_sent', 'email_delivered', 'email_opened', 'email_clicked', 'email_bounced',
              'email_complained', 'email_unsubscribed', 'page_view', 'form_submit', 'sms_sent'])[1 + (i * 7 + i / 13) % 10],
       'campaign-' || (i % 3),
       timestamp '2026-10-30 00:00' + (i * interval '29 seconds')
FROM generate_series(0, 5999) AS i;

INSERT INTO delivery.sending_domains (organization_id, domain, status, verified_at, created_at)
SELECT md5('org' || (i % 5))::uuid,
       'mail' || i || '.example.com',
       (ARRAY['verified', 'pending', 'failed'])[1 + i % 3],
       CASE WHEN i % 3 = 0 THEN timestamp '2026-10-20' END,
       timestamp '2026-10-31' - (i * interval '3 days')
FROM generate_series(0, 29) AS i;

INSERT INTO scoring.lead_scores (organization_id, contact_id, total_score, grade, scored_at)
SELECT md5('org' || (i % 5))::uuid, md5('contact' || i)::uuid, (i * 37) % 101,
       (ARRAY['A', 'B', 'C', 'D'])[1 + i % 4], timestamp '2026-10-30 12:00' + (i * interval '1 minute')
FROM generate_series(0, 199) AS i;

INSERT INTO lead_intelligence.enrichment_jobs
    (organization_id, contact_id, status, total_cost, total_latency_ms, created_at, completed_at)
SELECT md5('org' || (i % 5))::uuid, md5('contact' || i)::uuid,
       (ARRAY['completed', 'completed', 'failed', 'exhausted', 'running'])[1 + i % 5],
       round((i % 50) * 0.0125, 4), 200 + i * 3,
       timestamp '2026-10-30 00:00' + (i * interval '7 minutes'),
       CASE WHEN i % 5 < 2 THEN timestamp '2026-10-30 00:05' + (i * interval '7 minutes') END
FROM generate_series(0, 199) AS i;
