-- The hourly rollup's "counted already today?" probe (sql/aggregate_hourly.sql, pass 2):
-- one probe per (org, type, contact) of the hour's new events. This index is keyed on
-- a 64-bit hash of that triple and the event's time only (about 30 bytes an entry, a
-- third of contact_activity_org_type_contact_idx), so that a probe descends on integer
-- comparisons straight to the triple's events in [day_start, aggregated_until). The
-- probe rechecks organization_id, event_type and contact_id on every entry it finds:
-- a hash collision costs a heap fetch, never a wrong count. The hourly job probes in
-- the index's order, so that consecutive probes touch neighbouring pages.
--
-- Write cost: one more B-tree entry per inserted event, at a position set by the hash
-- (bench/hourly.py's figures are with it; see the commit message for the per-insert cost).
-- On a large existing table, build it beforehand with CREATE INDEX CONCURRENTLY under
-- this name; this migration then finds it and does nothing.
CREATE INDEX IF NOT EXISTS contact_activity_triple_hash_idx
    ON analytics.contact_activity
    (hashtextextended(event_type, uuid_hash_extended(contact_id, uuid_hash_extended(organization_id, 0))),
     created_at);
