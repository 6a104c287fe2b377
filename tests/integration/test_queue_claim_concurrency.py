"""The layer the ledger hides: cronwright.queue_claim itself never hands one message to two
claimants. The run ledger would turn a second delivery into a `duplicate`, so no test
above this layer can see a weakened lock; these call the claim directly, from two
connections at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue
from engine.core.queries import query
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
BODY = '{"type":"test.probe","scheduledFor":"2026-10-31T10:00:00Z"}'


async def fill(dsn: str, n: int) -> None:
    async with Database.open(dsn, max_size=1) as db:
        await PgQueue(db, "q", clock=lambda: NOW).put_raw([BODY] * n)


def test_a_claim_held_open_is_skipped_at_once_by_a_second_claimant(pg_dsn: str) -> None:
    """A's claim has locked its rows and not committed; B must neither wait for them nor
    take them."""

    async def main() -> tuple[set[int], set[int]]:
        await fill(pg_dsn, 10)
        a = await asyncpg.connect(pg_dsn)
        b = await asyncpg.connect(pg_dsn)
        try:
            async with a.transaction():
                mine = {r["id"] for r in await a.fetch(query("queue.claim"), "q", NOW, 60.0, 5)}
                theirs = {
                    r["id"]
                    for r in await b.fetch(query("queue.claim"), "q", NOW, 60.0, 5, timeout=5)
                }
        finally:
            await a.close()
            await b.close()
        return mine, theirs

    mine, theirs = run(main())
    assert len(mine) == len(theirs) == 5
    assert mine.isdisjoint(theirs)


def test_two_connections_claiming_at_once_never_get_the_same_message(pg_dsn: str) -> None:
    """Rounds of two claims started together, until the queue is empty: every message is
    claimed exactly once."""
    total = 400

    async def claimant(conn: asyncpg.Connection, start: asyncio.Event) -> list[int]:
        got: list[int] = []
        while True:
            await start.wait()
            rows = await conn.fetch(query("queue.claim"), "q", NOW, 60.0, 7)
            if not rows:
                return got
            got += [r["id"] for r in rows]
            await asyncio.sleep(0)

    async def main() -> tuple[list[int], list[int]]:
        await fill(pg_dsn, total)
        conns = [await asyncpg.connect(pg_dsn) for _ in range(2)]
        start = asyncio.Event()
        try:
            tasks = [asyncio.create_task(claimant(c, start)) for c in conns]
            start.set()
            a, b = await asyncio.gather(*tasks)
        finally:
            for c in conns:
                await c.close()
        return a, b

    a, b = run(main())
    assert sorted(a + b) == sorted(set(a + b))  # nobody got a message twice
    assert len(a + b) == total
    assert a and b  # both took part
