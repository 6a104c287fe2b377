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
