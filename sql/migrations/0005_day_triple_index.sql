-- The hourly rollup's "counted already today?" probe (sql/aggregate_hourly.sql, pass 2),
-- rebuilt for large tables: this index replaces contact_activity_triple_hash_idx (0004).
-- At 10M events a day (bench/hourly.py --events 10000000) a probe of 0004's index took
-- 11 us, two thirds of the job's main statement, and the job 5.2x the CPU of the bare
-- GROUP BY of the hour; a probe of this one takes 2 us, and the job 3.9x (same data,
-- same run). Two changes do it:
--
-- 1. Index-only. PostgreSQL answers from an index alone only when every column the query
--    reads is in it, and the probe's hash is an expression of (organization_id,
--    event_type, contact_id): with those columns outside 0004's index, each probe that
--    found an entry read the event's heap row to recheck the triple. By midday nearly
--    half the probes find one (172k of 383k at 12:00), each a random page of the day's
--    heap (1.7 GB at 10M events). Here the three columns are INCLUDEd: the recheck reads
--    the index entry, and the job's working set is this index's part of the day.
-- 2. The day first. Keyed on the hash first, 0004's index puts each triple's entries of
--    every day side by side, so an hour's probes (and every insert) land on pages spread
--    over the whole table's history. Keyed on the UTC day first, as
--    contact_activity_day_idx (0003) is, the probes and the inserts stay inside today's
--    part of the index whatever the table's size.
--
-- Write cost: one B-tree entry per inserted event, about 90 bytes (0004's: about 30), at a
-- place inside the day's part of the index set by the hash: 900 MB per 10M events as
-- built, more as it grows by inserts. Inserting 208k events into a table with the 6 other
-- indexes took 23% more CPU with 0004's index and 31% more with this one. 0004's index
-- is dropped, so the table keeps as many indexes as before.
--
-- On a large existing table, build it beforehand without blocking writes, and drop the
-- old one the same way (README, "The hourly rollup on a large table"); the statements
-- below then find the new index and no old one, and do nothing but ANALYZE.
CREATE INDEX IF NOT EXISTS contact_activity_day_triple_idx
    ON analytics.contact_activity
    ((created_at::date),
     hashtextextended(event_type, uuid_hash_extended(contact_id, uuid_hash_extended(organization_id, 0))),
     created_at)
    INCLUDE (organization_id, event_type, contact_id);

DROP INDEX IF EXISTS analytics.contact_activity_triple_hash_idx;

-- The planner needs the statistics of the index's expressions to see that a probe finds
-- about one entry (0004 says what it does without them). ANALYZE samples a fixed number
-- of rows: seconds, not a scan.
ANALYZE analytics.contact_activity;
