"""Shared pieces for the executor tests: a probe job built directly from engine.core.model,
its tables, a fake clock, a recording sleep, and an executor wired to a real database."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.manifests import probe_manifest as make_manifest
from engine.adapters.pg import Database
from engine.core.model import (
    Job,
    Overlap,
    Period,
    RetryPolicy,
    Window,
)
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Action, Executor
from engine.runtime.metrics import Collect

SLOT = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
NOW = SLOT + timedelta(minutes=5)

# probe.effects is the job's effect (one row per slot, an idempotent upsert); the
# counter is deliberately NOT idempotent, so a second run of a slot shows up in it.
# probe.flaky(n) raises a serialization failure on its first n calls; the sequence
# survives the rollback that the failure causes.
SETUP_SQL = """
CREATE SCHEMA probe;
CREATE TABLE probe.effects (
    slot timestamptz PRIMARY KEY,
    value text NOT NULL,
    started timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE probe.counter (n integer NOT NULL);
INSERT INTO probe.counter VALUES (0);
CREATE TABLE probe.intervals (slot timestamptz, started timestamptz, finished timestamptz);
CREATE SEQUENCE probe.tries;
CREATE FUNCTION probe.flaky(failures integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('probe.tries') <= failures THEN
        RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN 1;
END $$;
"""

EFFECT_SQL = """
INSERT INTO probe.effects (slot, value) VALUES ({{ window_start }}, {{ params.value }})
ON CONFLICT (slot) DO UPDATE SET value = EXCLUDED.value;
UPDATE probe.counter SET n = n + 1;
"""


def make_job(
    *,
    name: str = "probe",
    cron: str = "0 * * * *",
    overlap: Overlap = Overlap.FORBID,
    timeout_seconds: int = 30,
    retry: RetryPolicy | None = None,
    params: Mapping[str, Any] | None = None,
    action: str | None = None,
) -> Job:
    from engine.core.model import Action as ActionSpec

    template = f"{name}.sql"
    return Job(
        name=name,
        type=f"test.{name}",
        cron=cron,
        sql=None if action else template,
        action=ActionSpec(name=action, sql=template) if action else None,
        window=Window(period=Period.HOUR, offset=-1),
        retry=retry or RetryPolicy(max_attempts=3, initial_delay_seconds=1, max_delay_seconds=10),
        timeout_seconds=timeout_seconds,
        overlap=overlap,
        params=params or {"value": "v"},
    )


def body(job: Job, slot: datetime = SLOT) -> str:
    return json.dumps({"type": job.type, "scheduledFor": slot.strftime("%Y-%m-%dT%H:%M:%SZ")})


@dataclass
class FakeClock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingSleep:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Harness:
    db: Database
    executor: Executor
    metrics: Collect
    clock: FakeClock
    sleep: RecordingSleep

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self.db.fetch(sql, *args)

    async def counter(self) -> int:
        rows = await self.query("SELECT n FROM probe.counter")
        return int(rows[0]["n"])

    async def ledger(self) -> list[dict[str, Any]]:
        return await self.query(
            "SELECT job, slot, status, attempt, rows, error_class, error, message_id"
            " FROM cronwright.runs ORDER BY job, slot"
        )

    async def dead_letters(self) -> list[dict[str, Any]]:
        return await self.query(
            "SELECT job, type, slot, message_id, body, reason, error_class, attempts"
            " FROM cronwright.dead_letters ORDER BY id"
        )


@asynccontextmanager
async def harness(
    dsn: str,
    jobs: Sequence[tuple[Job, str]],
    *,
    actions: Mapping[str, Action] | None = None,
    max_size: int = 4,
    dead_letters: Any = None,
) -> AsyncIterator[Harness]:
    async with Database.open(dsn, max_size=max_size) as db:
        async with db.transaction() as tx:
            await tx.script(SETUP_SQL)
        clock, sleep, metrics = FakeClock(), RecordingSleep(), Collect()
        executor = Executor(
            db=db,
            manifest=make_manifest(*(job for job, _ in jobs)),
            templates={job.template: sql for job, sql in jobs},
            actions=actions or {},
            dead_letters=dead_letters or PgDeadLetters(db),
            metrics=metrics,
            clock=clock,
            sleep=sleep,
            rng=random.Random(0),
        )
        yield Harness(db=db, executor=executor, metrics=metrics, clock=clock, sleep=sleep)


async def backend_sleeping(
    db: Database, *, holding: str | None = None, timeout: float = 10.0
) -> int:
    """The pid of another backend asleep in a job's ``pg_sleep`` and, given ``holding``,
    already holding a lock on that table (a later statement of the job). A SQL job's
    statements run inside ``cronwright.run_slot``, so pg_stat_activity shows that call,
    not their text."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        rows = await db.fetch(
            "SELECT a.pid FROM pg_stat_activity AS a"
            " WHERE a.wait_event = 'PgSleep' AND a.pid <> pg_backend_pid()"
            " AND ($1::text IS NULL OR EXISTS (SELECT FROM pg_locks AS l"
            "      WHERE l.pid = a.pid AND l.relation = to_regclass($1)))",
            holding,
        )
        if rows:
            return int(rows[0]["pid"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no backend slept in a job (holding {holding}) within {timeout}s")
