-- The hourly rollup's "counted already today?" probe (sql/aggregate_hourly.sql, pass 2):
-- one probe per (org, type, contact) of the hour's new events. This index is keyed on
-- a 64-bit hash of that triple and the event's time only (about 30 bytes an entry, a
-- third of contact_activity_org_type_contact_idx), so that a probe descends on integer
-- comparisons straight to the triple's events in [day_start, aggregated_until). The
-- probe rechecks organization_id, event_type and contact_id on every entry it finds:
-- a hash collision costs a heap fetch, never a wrong count. The hourly job probes in
-- the index's order, so that consecutive probes touch neighbouring pages.
--
-- Write cost: one more B-tree entry per inserted event, at a position set by the hash:
-- about 30 MB per 1M events, and 2-5 us an insert (an INSERT ... SELECT of 208k events
-- into a copy of the table with its 6 other indexes took 10-25% longer with it).
-- On a large existing table, build it beforehand with CREATE INDEX CONCURRENTLY under
-- this name; the CREATE below then finds it and does nothing.
CREATE INDEX IF NOT EXISTS contact_activity_triple_hash_idx
    ON analytics.contact_activity
    (hashtextextended(event_type, uuid_hash_extended(contact_id, uuid_hash_extended(organization_id, 0))),
     created_at);

-- The planner needs the statistics of the index's expression to see that a probe finds
-- about one entry; without them it guesses thousands and probes with a bitmap heap scan
-- (slower than the old probe) until autovacuum next analyzes the table, which on a large
-- table can be days away. ANALYZE samples a fixed number of rows: seconds, not a scan.
ANALYZE analytics.contact_activity;
