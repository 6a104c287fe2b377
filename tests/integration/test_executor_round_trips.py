"""A job's transaction costs three round trips: the claim travels with BEGIN, the job's
statement on its own, and the success with the queue's ack and COMMIT. The transactions
here are real; they only record which calls their Tx receives."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from devtools.manifests import probe_manifest
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database, Tx
from engine.core.model import Overlap
from engine.runtime import ledger
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run
from tests.integration.executor_support import NOW, SETUP_SQL, make_job

pytestmark = pytest.mark.postgres

ONE_STATEMENT = """
INSERT INTO probe.effects (slot, value) VALUES ({{ window_start }}, {{ params.value }})
ON CONFLICT (slot) DO UPDATE SET value = EXCLUDED.value;
"""


class RecordingTx:
    def __init__(self, tx: Tx, calls: list[str]) -> None:
        self._tx, self._calls = tx, calls

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int:
        self._calls.append("execute")
        return await self._tx.execute(sql, *args, timeout=timeout)

    async def execute_inlined(self, sql: str, *args: Any, timeout: float | None = None) -> int:
        self._calls.append("execute_inlined")
        return await self._tx.execute_inlined(sql, *args, timeout=timeout)

    def at_commit(self, sql: str, *args: Any) -> None:
        self._calls.append("at_commit")
        self._tx.at_commit(sql, *args)

    async def fetch(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self._calls.append("fetch")
        return await self._tx.fetch(sql, *args, timeout=timeout)

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self._calls.append("fetch")
        return await self._tx.fetchrow(sql, *args, timeout=timeout)


class RecordingDb:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.transactions: list[list[str]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RecordingTx]:
        calls: list[str] = []
        self.transactions.append(calls)
        async with self.db.transaction() as tx:
            yield RecordingTx(tx, calls)


def round_trips(calls: list[str]) -> int:
    """BEGIN rides with an inlined first statement; queued statements ride with COMMIT."""
    awaited = [c for c in calls if c != "at_commit"]
    begin = 0 if awaited[:1] == ["execute_inlined"] else 1
    return begin + len(awaited) + 1


def test_a_one_statement_job_takes_three_round_trips_and_a_duplicate_two(pg_dsn: str) -> None:
    job = make_job(overlap=Overlap.ALLOW)

    async def main() -> tuple[list[list[str]], list[dict[str, Any]]]:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn) as db:
            async with db.transaction() as tx:
                await tx.script(
                    SETUP_SQL + "CREATE TABLE probe.inbox (id int PRIMARY KEY);"
                    "INSERT INTO probe.inbox VALUES (1), (2);"
                )
            recording = RecordingDb(db)
            executor = Executor(
                db=recording,
                manifest=probe_manifest(job),
                templates={job.template: ONE_STATEMENT},
                actions={},
                dead_letters=PgDeadLetters(db),
                metrics=Collect(),
                clock=lambda: NOW,
                sleep=asyncio.sleep,
                rng=random.Random(0),
            )
            body = json.dumps({"type": job.type, "scheduledFor": "2026-10-31T10:00:00Z"})
            for n in (1, 2):
                ack = ledger.Ack("DELETE FROM probe.inbox WHERE id = $1", (n,))
                await executor.handle(body, message_id=f"m{n}", attempt=1, ack=ack)
            state = await db.fetch(
                "SELECT (SELECT count(*) FROM probe.effects) AS effects,"
                " (SELECT count(*) FROM probe.inbox) AS inbox,"
                " (SELECT status FROM cronwright.runs) AS status"
            )
            return recording.transactions, state

    transactions, state = run(main())
    assert transactions == [
        ["execute_inlined", "execute", "at_commit", "at_commit"],  # claim, job, success + ack
        ["execute_inlined", "at_commit"],  # claim (a duplicate), the ack
    ]
    assert [round_trips(t) for t in transactions] == [3, 2]
    assert state == [{"effects": 1, "inbox": 0, "status": "succeeded"}]
