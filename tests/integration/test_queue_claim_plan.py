"""The local queue's claim reads the ready index in order and stops after the messages it
takes, whatever the queue's statistics say. Planned from a freshly filled queue's
estimates (a handful of ready rows), the same UPDATE read every ready message and sorted
them, on every claim. The plan is the one PostgreSQL logs (auto_explain) for the claim's
statement inside cronwright.queue_claim."""

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


async def claim_logging_plans(dsn: str, n: int) -> tuple[list[asyncpg.Record], list[str]]:
    plans: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "LOAD 'auto_explain';"
            " SET auto_explain.log_min_duration = 0;"
            " SET auto_explain.log_nested_statements = on;"
            " SET client_min_messages = log;"
        )
        conn.add_log_listener(lambda _c, message: plans.append(message.message))
        rows = await conn.fetch(query("queue.claim"), "q", NOW, 60.0, n)
        await asyncio.sleep(0)  # the log messages arrive with the result
    finally:
        await conn.close()
    return rows, plans


def test_a_claim_reads_the_ready_index_in_order_on_a_queue_without_statistics(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[list[asyncpg.Record], list[str]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            await PgQueue(db, "q", clock=lambda: NOW).put_raw([BODY] * 3000)
        return await claim_logging_plans(pg_dsn, 9)

    rows, plans = run(main())
    assert len(rows) == 9
    [plan] = [p for p in plans if "Update on queue" in p]
    assert "Index Scan using queue_ready_idx" in plan, plan
    assert "Bitmap" not in plan and "Sort" not in plan and "Seq Scan" not in plan, plan
