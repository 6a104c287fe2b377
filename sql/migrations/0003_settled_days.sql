-- Settled days and recomputation for the hourly rollup (sql/aggregate_hourly.sql).
--
-- settled:     the day was re-aggregated in full from the source by a run at or after
--              its end + settle_seconds (late events included); never reset.
-- recomputing: true only inside the transaction that is re-aggregating the day (it
--              picks the day and locks its row in one statement and re-aggregates it in
--              the next, with a fresh snapshot); it is cleared before that transaction
--              commits, so no other session ever sees it true.
ALTER TABLE analytics.event_rollup_days
    ADD COLUMN settled boolean NOT NULL DEFAULT false,
    ADD COLUMN recomputing boolean NOT NULL DEFAULT false;

-- Days finished before settling existed had their settling run long ago: leave them be
-- (a rerun of a day's 00:00 slot recomputes one on demand).
UPDATE analytics.event_rollup_days SET settled = true WHERE aggregated_until = date + 1;

-- Unfinished or unsettled days, oldest first: what each run's catch-up looks for.
CREATE INDEX event_rollup_days_pending_idx
    ON analytics.event_rollup_days (date) WHERE NOT settled;

-- A day's events in group order, for re-aggregating a whole day (settling, catch-up,
-- reruns) with one index-only scan and no sort: the day first, then the rollup's group
-- (event_type in byte order, as the rollup groups it), then the contact for the distinct
-- count. About 70 bytes an event; bench/settle.py measures what it buys.
CREATE INDEX contact_activity_day_idx
    ON analytics.contact_activity
    ((created_at::date), organization_id, (event_type COLLATE "C"), contact_id, created_at);
