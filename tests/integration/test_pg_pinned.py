"""Database.pinned(): a task (a consumer's worker) keeps one connection of the pool for
all its statements and transactions, and a broken one is replaced at its next use."""

from __future__ import annotations

import asyncio

import pytest

from engine.adapters.pg import Database
from engine.core.errors import DatabaseError
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

PID = "SELECT pg_backend_pid() AS pid"


async def pid_of_statement(db: Database) -> int:
    rows = await db.fetch_one_statement(PID)
    return int(rows[0]["pid"])


async def pid_of_transaction(db: Database) -> int:
    async with db.transaction() as tx:
        row = await tx.fetchrow(PID)
    assert row is not None
    return int(row["pid"])


def test_a_pinned_task_runs_every_statement_and_transaction_on_one_connection(
    pg_dsn: str,
) -> None:
    async def worker(db: Database) -> set[int]:
        async with db.pinned():
            pids = set()
            for _ in range(5):
                pids.add(await pid_of_statement(db))
                pids.add(await pid_of_transaction(db))
                await asyncio.sleep(0)
            return pids

    async def main() -> tuple[list[set[int]], int]:
        async with Database.open(pg_dsn, max_size=3) as db:
            pinned = await asyncio.gather(worker(db), worker(db))
            return pinned, db._pool.get_idle_size()

    (first, second), idle = run(main())
    assert len(first) == 1 and len(second) == 1
    assert first != second
    assert idle == 2  # both went back to the pool when their blocks ended


def test_a_nested_use_inside_a_pinned_transaction_takes_another_connection(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[int, int, int]:
        async with Database.open(pg_dsn, max_size=2) as db, db.pinned():
            async with db.transaction() as tx:
                row = await tx.fetchrow(PID)
                nested = await pid_of_statement(db)
            assert row is not None
            return int(row["pid"]), nested, await pid_of_statement(db)

    outer, nested, after = run(main())
    assert nested != outer
    assert after == outer


def test_a_pinned_connection_the_server_ended_while_idle_is_replaced_at_the_next_use(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[int, int]:
        async with Database.open(pg_dsn, max_size=2) as db, db.pinned():
            before = await pid_of_statement(db)
            async with Database.open(pg_dsn, max_size=1) as other:
                await other.fetch("SELECT pg_terminate_backend($1)", before)
            await asyncio.sleep(0.2)
            return before, await pid_of_statement(db)

    before, after = run(main())
    assert after != before


def test_a_pinned_connection_lost_mid_statement_fails_that_one_and_is_replaced(
    pg_dsn: str,
) -> None:
    async def kill_after(other: Database, pid: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await other.fetch("SELECT pg_terminate_backend($1)", pid)

    async def main() -> tuple[int, bool, int, int]:
        async with Database.open(pg_dsn, max_size=2) as db, db.pinned():
            before = await pid_of_statement(db)
            async with Database.open(pg_dsn, max_size=1) as other:
                killer = asyncio.create_task(kill_after(other, before, 0.3))
                try:
                    await db.fetch_one_statement("SELECT pg_sleep(5)")
                    transient = False
                except DatabaseError as err:
                    transient = err.transient
                await killer
            return before, transient, await pid_of_statement(db), await pid_of_statement(db)

    before, transient, after, again = run(main())
    assert transient
    assert after != before and again == after
