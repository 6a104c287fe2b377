{#
analytics.warmup-daily-reset (action warmup-reset): the domains still warming up,
verified before the slot and created in the 30 days before it (as of the slot, so a
late run selects the same domains). The action resets the R2 counter
warmup/daily/{organization_id}/{domain} of each row.
#}
SELECT d.organization_id, d.domain
FROM delivery.sending_domains AS d
WHERE d.status = 'verified'
  AND d.verified_at < ({{ slot }}::timestamptz AT TIME ZONE 'UTC')
  AND d.created_at >= ({{ slot }}::timestamptz AT TIME ZONE 'UTC') - interval '30 days'
  AND d.created_at < ({{ slot }}::timestamptz AT TIME ZONE 'UTC')
ORDER BY d.organization_id, d.domain;
