-- Who did what from the operator's side: the CLI records `cli:$USER`, the web console
-- `ui:NAME` (the name given at sign-in). Rows written before this migration, and those
-- the scheduler and the reconciler write, have no actor (NULL).

-- A pause's history says who opened it and who ended it.
ALTER TABLE cronwright.pauses
    ADD COLUMN paused_by  text,
    ADD COLUMN resumed_by text;

-- An operator's send (enqueue, a rerun request, a replay) says who asked, and a rerun
-- request's id, which the run history's rerun_id then shows on the attempts it caused.
-- A later request of the same slot replaces the row, as it replaces source and time.
ALTER TABLE cronwright.dispatched
    ADD COLUMN requested_by text,
    ADD COLUMN rerun_id     text;

-- A replayed dead letter says who replayed it (beside when and how).
ALTER TABLE cronwright.dead_letters
    ADD COLUMN replayed_by text;
