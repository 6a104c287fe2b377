-- Every time cronwright stores is an instant Python can read back: from 1970-01-01 UTC
-- (where the sane range of slots starts, engine/core/times.py) to before year 10000.
-- That excludes -infinity and infinity, which asyncpg reads back as a naive
-- datetime.min or max (`enqueue --at 0001-01-01T00:00:00Z` stored -infinity in
-- cronwright.dispatched, and every server's gauges then died on it), and BC or 5-digit
-- years, which it cannot read at all. A CHECK constraint per column, named
-- <table>_<column>_sane, refuses them from now on, whoever writes.
--
-- Rows already outside the range:
-- - a slot outside it can never run, so what only records one goes: the dispatch claim
--   (cronwright.dispatched), the run and its history (cronwright.runs, run_history);
-- - a queued message keeps its row with slot NULL: its body still names the slot, and
--   the consumer dead-letters it with the reason ('scheduledFor' ... is before ...);
-- - a dead letter keeps its row with slot NULL and the original slot noted in its
--   reason; replay skips it (it names no slot to replay);
-- - any other time (created_at, visible_at, paused_from, ...) is clamped to the range's
--   ends, which keeps what it meant: -infinity sorts before every slot, infinity after.
-- The constraints then hold for every timestamptz column of the schema (those of
-- earlier migrations included); a later migration adding one adds its own
-- (tests/integration/test_finite_times.py checks that each has one).

DELETE FROM cronwright.dispatched
WHERE NOT (slot >= '1970-01-01 00:00:00+00' AND slot < '10000-01-01 00:00:00+00');
DELETE FROM cronwright.run_history
WHERE NOT (slot >= '1970-01-01 00:00:00+00' AND slot < '10000-01-01 00:00:00+00');
DELETE FROM cronwright.runs
WHERE NOT (slot >= '1970-01-01 00:00:00+00' AND slot < '10000-01-01 00:00:00+00');
UPDATE cronwright.queue SET slot = NULL
WHERE NOT (slot >= '1970-01-01 00:00:00+00' AND slot < '10000-01-01 00:00:00+00');
UPDATE cronwright.dead_letters
SET reason = reason || ' (slot ' || slot::text || ' removed by migration 0011: outside'
             || ' 1970-01-01 to 9999-12-31)',
    slot = NULL
WHERE NOT (slot >= '1970-01-01 00:00:00+00' AND slot < '10000-01-01 00:00:00+00');

DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'cronwright' AND data_type = 'timestamp with time zone'
        ORDER BY table_name, column_name
    LOOP
        EXECUTE format(
            'UPDATE cronwright.%1$I SET %2$I = CASE WHEN %2$I < %3$L THEN %3$L::timestamptz'
            ' ELSE %4$L::timestamptz END WHERE NOT (%2$I >= %3$L AND %2$I < %5$L)',
            c.table_name, c.column_name, '1970-01-01 00:00:00+00',
            '9999-12-31 23:59:59+00', '10000-01-01 00:00:00+00');
        EXECUTE format(
            'ALTER TABLE cronwright.%1$I ADD CONSTRAINT %3$I'
            ' CHECK (%2$I >= %4$L AND %2$I < %5$L)',
            c.table_name, c.column_name, c.table_name || '_' || c.column_name || '_sane',
            '1970-01-01 00:00:00+00', '10000-01-01 00:00:00+00');
    END LOOP;
END $$;
