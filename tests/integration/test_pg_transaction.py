"""engine.adapters.pg's transaction: commit, rollback, and an aborted transaction never reported
as committed."""

from __future__ import annotations

import pytest

from engine.adapters.pg import Database
from engine.core.errors import DatabaseError
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres


def test_a_caught_error_inside_a_transaction_is_not_reported_as_committed(pg_dsn: str) -> None:
    async def main() -> list[dict[str, object]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.script("CREATE TABLE t (n int PRIMARY KEY)")
            with pytest.raises(DatabaseError) as caught:
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO t VALUES (1)")
                    with pytest.raises(DatabaseError):
                        await tx.execute("INSERT INTO t VALUES (1)")  # aborts the transaction
            assert (caught.value.error_class, caught.value.transient) == ("rolled_back", False)
            # The connection went back to the pool clean: the next transaction works.
            return await db.fetch("SELECT count(*) AS n FROM t")

    assert run(main()) == [{"n": 0}]


def test_an_error_in_the_block_rolls_back_and_propagates(pg_dsn: str) -> None:
    class Boom(Exception):
        pass

    async def main() -> list[dict[str, object]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.script("CREATE TABLE t (n int PRIMARY KEY)")
            with pytest.raises(Boom):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO t VALUES (1)")
                    raise Boom
            return await db.fetch("SELECT count(*) AS n FROM t")

    assert run(main()) == [{"n": 0}]


def test_an_inlined_first_statement_opens_the_transaction_and_returns_its_row_count(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[int, list[dict[str, object]]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.script("CREATE TABLE t (n int PRIMARY KEY, s text)")
            with pytest.raises(DatabaseError):
                async with db.transaction() as tx:
                    count = await tx.execute_inlined(
                        "INSERT INTO t SELECT g, $1 FROM generate_series(1, $2) AS g", "it's", 3
                    )
                    assert count == 3
                    await tx.execute("INSERT INTO t VALUES (1, 'clash')")  # rolls back all
            async with db.transaction() as tx:
                count = await tx.execute_inlined(
                    "INSERT INTO t SELECT g, $1 FROM generate_series(1, $2) AS g", "it's", 2
                )
            return count, await db.fetch("SELECT n, s FROM t ORDER BY n")

    assert run(main()) == (2, [{"n": 1, "s": "it's"}, {"n": 2, "s": "it's"}])


def test_a_statement_queued_for_commit_runs_last_and_its_failure_rolls_everything_back(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.script("CREATE TABLE t (n int PRIMARY KEY)")
            async with db.transaction() as tx:
                tx.at_commit("INSERT INTO t VALUES ($1 + 1)", 1)  # sees the row below
                await tx.execute("INSERT INTO t VALUES (1)")
            committed = await db.fetch("SELECT n FROM t ORDER BY n")
            with pytest.raises(DatabaseError) as caught:
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO t VALUES (3)")
                    tx.at_commit("INSERT INTO t VALUES ($1)", 1)  # a duplicate key, at COMMIT
            assert caught.value.error_class == "integrity_constraint_violation"
            # The connection went back to the pool clean: the next transaction works.
            return committed, await db.fetch("SELECT n FROM t ORDER BY n")

    committed, after = run(main())
    assert committed == [{"n": 1}, {"n": 2}]
    assert after == [{"n": 1}, {"n": 2}]


def test_a_transaction_of_queued_statements_alone_still_commits_them(pg_dsn: str) -> None:
    async def main() -> list[dict[str, object]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.script("CREATE TABLE t (n int PRIMARY KEY)")
            async with db.transaction() as tx:
                tx.at_commit("INSERT INTO t VALUES ($1)", 7)
            return await db.fetch("SELECT n FROM t")

    assert run(main()) == [{"n": 7}]
