"""Database.call_bounded: one statement, one round trip, under the statement_timeout the
call asks for. The statement checks the session's timeout itself (SQLSTATE CW001 when it
is not the one asked for); the adapter then sets it on the same connection and calls
again, and where a session setting does not stick, calls in a transaction of its own."""

from __future__ import annotations

from typing import Any

import pytest

from engine.adapters.pg import Database
from engine.core.errors import DatabaseError
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

# probe.calls counts every call, also those that raise (a sequence is not transactional).
# The first p_refuse calls raise CW001 whatever the setting, as behind PgBouncer in
# transaction mode, where a session's setting may land on another server connection.
SETUP = """
CREATE SCHEMA probe;
CREATE SEQUENCE probe.calls;
CREATE FUNCTION probe.bounded(p_ms integer, p_refuse integer, p_sleep float8)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('probe.calls') <= p_refuse
       OR extract(epoch FROM current_setting('statement_timeout')::interval) * 1000 <> p_ms
    THEN
        RAISE EXCEPTION 'statement_timeout is not % ms', p_ms USING ERRCODE = 'CW001';
    END IF;
    PERFORM pg_sleep(p_sleep);
    RETURN current_setting('statement_timeout');
END $$;
"""
CALL = "SELECT probe.bounded($1, $2, $3)"


async def calls(db: Database) -> int:
    rows = await db.fetch("SELECT last_value FROM probe.calls")
    return int(rows[0]["last_value"])


def bounded(
    pg_dsn: str, steps: list[tuple[int, int, float]], *, reset: bool = False
) -> tuple[list[Any], int, str]:
    """Run the calls on a one-connection pool; (their answers, the calls the server saw,
    the session's statement_timeout afterwards)."""

    async def main() -> tuple[list[Any], int, str]:
        async with Database.open(pg_dsn, max_size=1, session_reset=reset) as db:
            async with db.transaction() as tx:
                await tx.script(SETUP)
            answers = []
            for ms, refuse, sleep in steps:
                try:
                    answers.append(
                        await db.call_bounded(
                            CALL, ms, refuse, sleep, statement_timeout_ms=ms, timeout=10
                        )
                    )
                except DatabaseError as err:
                    answers.append(err.error_class)
            session = await db.fetch_one_statement(
                "SELECT current_setting('statement_timeout') AS t"
            )
            return answers, await calls(db), session[0]["t"]

    return run(main())


def test_the_first_call_on_a_connection_sets_its_statement_timeout_and_the_next_ones_reuse_it(
    pg_dsn: str,
) -> None:
    answers, seen, session = bounded(pg_dsn, [(1500, 0, 0.0)] * 3)
    assert answers == ["1500ms"] * 3
    assert seen == 4  # the first call raised CW001, was set up, then called again
    assert session == "1500ms"


def test_a_call_that_needs_another_timeout_sets_it_again(pg_dsn: str) -> None:
    answers, seen, session = bounded(pg_dsn, [(1500, 0, 0.0), (2500, 0, 0.0)])
    assert answers == ["1500ms", "2500ms"]
    assert seen == 4
    assert session == "2500ms"


def test_where_the_session_setting_does_not_do_the_call_runs_in_a_transaction_of_its_own(
    pg_dsn: str,
) -> None:
    answers, seen, _ = bounded(pg_dsn, [(1500, 2, 0.0)])
    assert answers == ["1500ms"]
    assert seen == 3


def test_the_call_in_a_transaction_of_its_own_is_bounded_too(pg_dsn: str) -> None:
    answers, seen, _ = bounded(pg_dsn, [(300, 2, 5.0)])
    assert answers == ["statement_timeout"]
    assert seen == 3


def test_a_pool_that_resets_its_sessions_still_runs_every_call_under_its_timeout(
    pg_dsn: str,
) -> None:
    answers, seen, _ = bounded(pg_dsn, [(1500, 0, 0.0)] * 2 + [(300, 0, 5.0)], reset=True)
    assert answers == ["1500ms", "1500ms", "statement_timeout"]
    assert seen == 6  # RESET ALL after each: every call sets the timeout again


def test_the_timeout_bounds_the_call_on_the_server(pg_dsn: str) -> None:
    answers, _, _ = bounded(pg_dsn, [(300, 0, 5.0), (300, 0, 0.0)])
    assert answers == ["statement_timeout", "300ms"]


def test_a_transaction_on_a_connection_a_bounded_call_set_up_runs_under_the_default(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[str, str, Any]:
        async with Database.open(pg_dsn, max_size=1, session_reset=False) as db:
            async with db.transaction() as tx:
                await tx.script(SETUP)
            await db.call_bounded(CALL, 300, 0, 0.0, statement_timeout_ms=300, timeout=10)
            async with db.transaction() as tx:
                row = await tx.fetchrow(
                    "SELECT current_setting('statement_timeout') AS t, pg_sleep(0.5)::text AS s"
                )
            assert row is not None
            session = await db.fetch_one_statement(
                "SELECT current_setting('statement_timeout') AS t"
            )
            again = await db.call_bounded(CALL, 300, 0, 0.0, statement_timeout_ms=300, timeout=10)
            return row["t"], session[0]["t"], again

    inside, session, again = run(main())
    assert inside == "0"  # the server's default here: no timeout; the 0.5 s sleep finished
    assert session == "300ms"  # the session keeps the job's, for the next run
    assert again == "300ms"
