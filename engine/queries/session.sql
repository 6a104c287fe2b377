-- Session and transaction settings (engine/adapters/pg.py, engine/runtime/deadline.py, engine/app/service.py).
-- Each block is one statement, named by its `-- name:` line (engine/core/queries.py).

-- name: set_statement_timeout
-- statement_timeout for the session ($2 false) or the transaction ($2 true).
SELECT set_config('statement_timeout', $1, $2)

-- name: set_local_statement_timeout
-- statement_timeout for the rest of the transaction.
SELECT set_config('statement_timeout', $1, true)

-- name: database_now
-- The database's clock, against the host's.
SELECT clock_timestamp() AS now

-- name: begin
-- Every transaction of engine/adapters/pgtx.py starts here: a connection that ran a SQL
-- job keeps that job's statement_timeout for its session (Database.call_bounded), so the
-- transaction starts from the configured default (a job's claim then sets its own).
BEGIN; SET LOCAL statement_timeout TO DEFAULT
