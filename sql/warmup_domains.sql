{#
analytics.warmup-daily-reset (action warmup-reset): the domains still warming up,
verified and created in the 30 days before the slot. The action resets the R2
counter warmup/daily/{organization_id}/{domain} of each row.
#}
SELECT d.organization_id, d.domain
FROM delivery.sending_domains AS d
WHERE d.status = 'verified'
  AND d.created_at >= ({{ slot }}::timestamptz AT TIME ZONE 'UTC') - interval '30 days'
  AND d.created_at < ({{ slot }}::timestamptz AT TIME ZONE 'UTC')
ORDER BY d.organization_id, d.domain;
