"""Executor overhead per job: the executor's full path (render, one transaction with the
advisory lock, the ledger claim and record, the metric line) against raw asyncpg running
the same statement. Goal: under 1 ms per job.

Starts its own throwaway Postgres (devtools/pgserver.py). Run from the repo root:

    .venv/bin/python -m bench.executor_overhead [--jobs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from devtools import pgserver
from devtools.manifests import probe_manifest
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.core.model import Job, Period, Window
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import JsonLines
from engine.sql import sqltemplates

SETUP = """
CREATE SCHEMA bench;
CREATE TABLE bench.effects (slot timestamptz PRIMARY KEY, value text NOT NULL);
"""
TEMPLATE = """
INSERT INTO bench.effects (slot, value) VALUES ({{ window_start }}, {{ params.value }})
ON CONFLICT (slot) DO UPDATE SET value = EXCLUDED.value;
"""
RAW_SQL = (
    "INSERT INTO bench.effects (slot, value) VALUES ($1, $2)"
    " ON CONFLICT (slot) DO UPDATE SET value = EXCLUDED.value"
)
JOB = Job(
    name="bench",
    type="bench.upsert",
    cron="0 * * * *",
    sql="bench.sql",
    window=Window(period=Period.HOUR, offset=-1),
    params={"value": "v"},
)
MANIFEST = probe_manifest(JOB)
START = datetime(2020, 1, 1, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def slots(offset: int, n: int) -> list[datetime]:
    return [START + timedelta(hours=offset + i) for i in range(n)]


async def per_job_ms(
    run_one: Callable[[datetime], Awaitable[object]], batch: list[datetime]
) -> float:
    t0 = time.perf_counter()
    for slot in batch:
        await run_one(slot)
    return (time.perf_counter() - t0) * 1000 / len(batch)


async def measure(dsn: str, jobs: int, batches: int) -> dict[str, float]:
    await migrate_url(dsn, None)
    async with Database.open(dsn, max_size=2, session_reset=False) as db:
        async with db.transaction() as tx:
            await tx.script(SETUP)
        executor = Executor(
            db=db,
            manifest=MANIFEST,
            templates={JOB.template: TEMPLATE},
            actions={},
            dead_letters=PgDeadLetters(db),
            metrics=JsonLines(io.StringIO()),
            clock=lambda: NOW,
            sleep=asyncio.sleep,
            rng=random.Random(0),
        )

        async def via_executor(slot: datetime) -> object:
            body = json.dumps({"type": JOB.type, "scheduledFor": slot.strftime("%Y-%m-%dT%H:%MZ")})
            outcome = await executor.handle(body, message_id="bench", attempt=1)
            assert outcome.status == "succeeded", outcome
            return outcome

        async def raw(slot: datetime) -> object:
            # The baseline: the same statement and values on a plain asyncpg connection,
            # autocommit, statement cache warm.
            return await conn.execute(RAW_SQL, slot - timedelta(hours=1), "v")

        def render(slot: datetime) -> object:
            return sqltemplates.split_statements(sqltemplates.render(JOB, TEMPLATE, slot))

        async def render_only(slot: datetime) -> object:
            return render(slot)

        conn = await asyncpg.connect(dsn, timeout=30)
        results: dict[str, list[float]] = {"raw": [], "executor": [], "render": []}
        offset = 0
        await per_job_ms(raw, slots(offset, 200))  # warm up caches and the pool
        await per_job_ms(via_executor, slots(offset + 200, 200))
        offset += 400
        # Small interleaved batches, so both sides see the same machine load.
        for _ in range(batches):
            for name, fn in (("raw", raw), ("executor", via_executor), ("render", render_only)):
                results[name].append(await per_job_ms(fn, slots(offset, jobs)))
                offset += jobs
        await conn.close(timeout=30)
    diffs = [e - r for e, r in zip(results["executor"], results["raw"], strict=True)]
    results["overhead"] = diffs
    return {name: statistics.median(values) for name, values in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per batch")
    parser.add_argument("--batches", type=int, default=30, help="batches; medians are reported")
    args = parser.parse_args(argv)
    server = pgserver.start()
    try:
        asyncio.run(pgserver.admin(server, 'CREATE DATABASE "bench"'))
        ms = asyncio.run(measure(server.dsn("bench"), args.jobs, args.batches))
    finally:
        pgserver.stop(server)
    overhead = ms["overhead"]
    total = args.jobs * args.batches
    print(f"executor overhead per job ({total} jobs each, median of {args.batches} batches)")
    print(f"  raw asyncpg, same statement     {ms['raw']:.3f} ms/job")
    print(f"  executor, full path             {ms['executor']:.3f} ms/job")
    verdict = "met" if overhead < 1.0 else "MISSED"
    print(f"  overhead (lock, ledger, metric) {overhead:.3f} ms/job  (goal < 1 ms: {verdict})")
    print(f"    of which template rendering   {ms['render']:.3f} ms/job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
