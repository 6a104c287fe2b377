"""A SQL job's whole transaction is one round trip: one call of cronwright.run_slot
claims the slot, runs the statements, records the success and runs the queue's ack. A
job with an action (or a value with no SQL literal) keeps a transaction of three round
trips: the claim travels with BEGIN, the statement on its own, and the success with the
queue's ack and COMMIT. Everything here is real; the wrappers only record calls."""

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
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue
from engine.adapters.pgtx import PgTx
from engine.core.model import Job, Overlap
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
    def __init__(self, tx: PgTx, calls: list[str]) -> None:
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

    def inline(self, sql: str, args: Any) -> str:
        return self.db.inline(sql, args)

    async def call_bounded(
        self, sql: str, *args: Any, statement_timeout_ms: int, timeout: float
    ) -> Any:
        self.transactions.append(["call_bounded"])
        return await self.db.call_bounded(
            sql, *args, statement_timeout_ms=statement_timeout_ms, timeout=timeout
        )


def executor_for(db: Database, recording: RecordingDb, job: Job, template: str) -> Executor:
    async def count_rows(rows: Any, slot: Any) -> int:
        return len(rows)

    return Executor(
        db=recording,
        manifest=probe_manifest(job),
        templates={job.template: template},
        actions={"count": count_rows},
        dead_letters=PgDeadLetters(db),
        metrics=Collect(),
        clock=lambda: NOW,
        sleep=asyncio.sleep,
        rng=random.Random(0),
    )


async def set_up(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.script(
            SETUP_SQL + "CREATE TABLE probe.inbox (id int PRIMARY KEY);"
            "INSERT INTO probe.inbox VALUES (1), (2);"
        )


@asynccontextmanager
async def recorded(
    dsn: str, job: Job, template: str
) -> AsyncIterator[tuple[Database, RecordingDb, Executor]]:
    """A migrated database with the probe tables, and an executor whose database calls
    are recorded."""
    await migrate_url(dsn, None)
    async with Database.open(dsn) as db:
        await set_up(db)
        recording = RecordingDb(db)
        yield db, recording, executor_for(db, recording, job, template)


BODY = json.dumps({"type": "test.probe", "scheduledFor": "2026-10-31T10:00:00Z"})


def round_trips(calls: list[str]) -> int:
    """BEGIN rides with an inlined first statement; queued statements ride with COMMIT."""
    if calls == ["call_bounded"]:
        return 1
    awaited = [c for c in calls if c != "at_commit"]
    begin = 0 if awaited[:1] == ["execute_inlined"] else 1
    return begin + len(awaited) + 1


def test_a_sql_job_and_its_duplicate_each_take_one_round_trip_with_the_ack_inside(
    pg_dsn: str,
) -> None:
    job = make_job(overlap=Overlap.ALLOW)

    async def main() -> tuple[list[list[str]], list[dict[str, Any]], list[str]]:
        async with recorded(pg_dsn, job, ONE_STATEMENT) as (db, recording, executor):
            statuses = []
            for n in (1, 2):
                ack = ledger.Ack("DELETE FROM probe.inbox WHERE id = $1", (n,))
                outcome = await executor.handle(BODY, message_id=f"m{n}", attempt=1, ack=ack)
                statuses.append(outcome.status)
            state = await db.fetch(
                "SELECT (SELECT count(*) FROM probe.effects) AS effects,"
                " (SELECT count(*) FROM probe.inbox) AS inbox,"
                " (SELECT status FROM cronwright.runs) AS status,"
                " (SELECT rows FROM cronwright.runs) AS rows"
            )
            return recording.transactions, state, statuses

    transactions, state, statuses = run(main())
    assert transactions == [["call_bounded"], ["call_bounded"]]
    assert [round_trips(t) for t in transactions] == [1, 1]
    assert statuses == ["succeeded", "duplicate"]
    assert state == [{"effects": 1, "inbox": 0, "status": "succeeded", "rows": 1}]


def test_a_job_with_an_action_takes_three_round_trips_and_its_duplicate_two(
    pg_dsn: str,
) -> None:
    job = make_job(overlap=Overlap.ALLOW, action="count")
    select = "SELECT slot FROM probe.effects WHERE slot < {{ window_end }};\n"

    async def main() -> tuple[list[list[str]], list[dict[str, Any]]]:
        async with recorded(pg_dsn, job, select) as (db, recording, executor):
            for n in (1, 2):
                ack = ledger.Ack("DELETE FROM probe.inbox WHERE id = $1", (n,))
                await executor.handle(BODY, message_id=f"m{n}", attempt=1, ack=ack)
            state = await db.fetch(
                "SELECT (SELECT count(*) FROM probe.inbox) AS inbox,"
                " (SELECT status FROM cronwright.runs) AS status"
            )
            return recording.transactions, state

    transactions, state = run(main())
    assert transactions == [
        ["execute_inlined", "fetch", "at_commit", "at_commit"],  # claim, query, success + ack
        ["execute_inlined", "at_commit"],  # claim (a duplicate), the ack
    ]
    assert [round_trips(t) for t in transactions] == [3, 2]
    assert state == [{"inbox": 0, "status": "succeeded"}]


def test_a_value_without_a_sql_literal_runs_with_binds_in_the_three_round_trip_transaction(
    pg_dsn: str,
) -> None:
    job = make_job(overlap=Overlap.ALLOW, params={"parts": ["a", "b'c"]})
    template = (
        "INSERT INTO probe.effects (slot, value)"
        " VALUES ({{ window_start }}, array_to_string({{ params.parts }}::text[], '-'));\n"
    )

    async def main() -> tuple[list[list[str]], list[dict[str, Any]]]:
        async with recorded(pg_dsn, job, template) as (db, recording, executor):
            outcome = await executor.handle(BODY, message_id="m", attempt=1)
            assert outcome.status == "succeeded"
            return recording.transactions, await db.fetch("SELECT value FROM probe.effects")

    transactions, effects = run(main())
    assert transactions == [["execute_inlined", "execute", "at_commit"]]
    assert effects == [{"value": "a-b'c"}]


def test_the_local_queue_ack_deletes_its_row_inside_the_one_round_trip_and_only_with_its_lease(
    pg_dsn: str,
) -> None:
    """The local queue's ack runs in cronwright.run_slot as a statement of its own (its
    queue row, not its text): a delivery whose lease is no longer the row's acks nothing."""
    job = make_job(overlap=Overlap.ALLOW)

    async def main() -> tuple[list[list[str]], list[str], list[int]]:
        async with recorded(pg_dsn, job, ONE_STATEMENT) as (db, recording, executor):
            queue = PgQueue(db, "q", clock=lambda: NOW)
            await queue.put_raw([BODY, BODY])
            first, second = await queue.claim(2, lease_seconds=60)
            await queue.release([second])
            [again] = await queue.claim(1, lease_seconds=60)  # a new lease: ``second``'s is stale
            statuses = []
            for d in (first, second):
                ack = queue.ack_in(d)
                assert ack.queue_row == (d.id, d.lease_id)
                outcome = await executor.handle(d.body, message_id=d.message_id, attempt=1, ack=ack)
                statuses.append(outcome.status)
            left = [r["id"] for r in await db.fetch("SELECT id FROM cronwright.queue")]
            assert again.id == second.id
            return recording.transactions, statuses, left

    transactions, statuses, left = run(main())
    assert transactions == [["call_bounded"], ["call_bounded"]]
    assert statuses == ["succeeded", "duplicate"]
    assert len(left) == 1  # the stale lease's ack left the re-leased row alone
