"""Benchmark of ``cronwright backfill`` (``make bench``; a script, not a test).

Starts a throwaway PostgreSQL, loads 7 days of contact_activity (100,000 events a day by
default, devtools/events.py's generator, as bench/hourly.py), then backfills through the
real executor (ledger, advisory lock, one transaction per slot):

- the hourly rollup's 7 x 24 slots, at concurrency 1 and 4;
- the same plus the daily jobs (reports, scores, enrichment), at concurrency 1 and 4.

Each run starts from empty output tables and ledger. It prints slots per second and the
ratio of concurrency 4 to concurrency 1 measured in the same run. The hourly job forbids
overlap, so its slots share one queue: concurrency helps only across jobs. Run from the
repo root: ``.venv/bin/python -m bench.backfill``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import asyncpg

from bench.hourly import DAY, SETTINGS, TIMEOUT
from devtools import events as generated
from devtools import pgserver as pgfixture
from engine import manifest as manifests
from engine.app import backfill
from engine.runtime.metrics import Collect

ROOT = Path(__file__).resolve().parents[1]
DAYS = 7
RESET = """
TRUNCATE analytics.event_aggregates, analytics.event_rollup_days,
         analytics.campaign_daily_stats, analytics.daily_score_distribution,
         analytics.enrichment_metrics, cronwright.runs
"""


async def load(conn: asyncpg.Connection, per_day: int, orgs: int) -> None:
    async with generated.bulk_load(conn):
        for d in range(DAYS):
            day = (DAY + timedelta(days=d)).date()
            await generated.insert_day(conn, day, per_day, orgs, seed=100 + d)


async def one(dsn: str, names: Sequence[str], concurrency: int) -> tuple[int, float]:
    m = manifests.load(ROOT / "jobs.yaml")
    jobs = [m.find_job(n) for n in names]
    conn = await asyncpg.connect(dsn, timeout=60)
    try:
        await conn.execute(RESET, timeout=TIMEOUT)
    finally:
        await conn.close(timeout=60)
    start, end = DAY + timedelta(hours=1), DAY + timedelta(days=DAYS, hours=1)
    t0 = time.perf_counter()
    _, done = await backfill.run(
        m, jobs, start, end, concurrency=concurrency, dsn=dsn, metrics=Collect()
    )
    seconds = time.perf_counter() - t0
    assert {d.status for d in done} == {"succeeded"}, backfill.summary(done)
    return len(done), seconds


async def bench(per_day: int, orgs: int) -> None:
    async with pgfixture.migrated_database(settings=SETTINGS) as dsn:
        conn = await asyncpg.connect(dsn, timeout=60)
        try:
            print(f"loading {DAYS} x {per_day:,} events ({orgs:,} orgs) ...", flush=True)
            await load(conn, per_day, orgs)
        finally:
            await conn.close(timeout=60)
        cases = {
            "hourly": ["aggregate-hourly"],
            "hourly + daily jobs": [
                "aggregate-hourly",
                "generate-daily-reports",
                "score-distribution",
                "enrichment-metrics",
            ],
        }
        print(
            f"\n{'backfill':<22} {'slots':>6} {'c=1 slots/s':>12} {'c=4 slots/s':>12} {'c4/c1':>7}"
        )
        for label, names in cases.items():
            rates = {}
            for c in (1, 4):
                n, seconds = await one(dsn, names, c)
                rates[c] = n / seconds
            print(
                f"{label:<22} {n:>6} {rates[1]:>12.1f} {rates[4]:>12.1f} "
                f"{rates[4] / rates[1]:>6.2f}x",
                flush=True,
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=1_000)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    asyncio.run(bench(args.per_day, args.orgs))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
