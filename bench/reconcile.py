"""Reconcile over the project's 6 jobs x 7 days: queries per pass (goal: one per job) and
time per pass, against a baseline measured in the same run that asks the ledger, the
dispatch claims and the pauses about each slot separately.

Starts its own throwaway Postgres. Run from the repo root:

    .venv/bin/python -m bench.reconcile [--passes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools import pgserver
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.app.reconciler import Reconciler
from engine.core.model import CatchUp, CatchUpPolicy, Manifest
from engine.manifest import load
from engine.runtime import accounting
from engine.runtime.dispatch import Slot
from engine.runtime.ports import Tx
from engine.schedule.slots import cron_schedule

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
WEEK = 7 * 86_400


class Counting:
    """A Db whose transactions count the statements they run."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queries = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.db.transaction() as tx:
            yield _CountedTx(self, tx)


class _CountedTx:
    def __init__(self, owner: Counting, tx: Tx) -> None:
        self._owner, self._tx = owner, tx

    async def fetch(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self._owner.queries += 1
        return await self._tx.fetch(sql, *args, timeout=timeout)

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self._owner.queries += 1
        return await self._tx.fetchrow(sql, *args, timeout=timeout)


class NoSender:
    transport = "none"

    async def send(self, tx: Tx, slots: Sequence[Slot]) -> None:
        raise AssertionError("a dry run sends nothing")


_ONE = """
SELECT (SELECT status FROM cronwright.runs WHERE job = $1 AND slot = $2) AS status,
       EXISTS (SELECT 1 FROM cronwright.dispatched WHERE job = $1 AND slot = $2) AS dispatched,
       EXISTS (SELECT 1 FROM cronwright.pauses WHERE job = $1 AND paused_from <= $2
               AND (resumed_at IS NULL OR $2 < resumed_at)) AS paused
"""


def week_manifest() -> Manifest:
    m = load(ROOT / "jobs.yaml")
    jobs = tuple(
        replace(j, catch_up=CatchUp(policy=CatchUpPolicy.ALL, within_seconds=WEEK), paused=False)
        for j in m.jobs
    )
    return replace(m, jobs=jobs)


async def seed(db: Database, manifest: Manifest) -> int:
    """A week of runs with every tenth slot missing. Returns the number of slots."""
    total = 0
    async with db.transaction() as tx:
        for job in manifest.jobs:
            slots = accounting.due_slots(cron_schedule(job), NOW - timedelta(seconds=WEEK), NOW)
            total += len(slots)
            ran = [s for i, s in enumerate(slots) if i % 10 != 9]
            await tx.execute(
                "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
                " SELECT $1, s, 'succeeded', 1, s FROM unnest($2::timestamptz[]) AS s",
                job.name,
                ran,
            )
    return total


async def measure(dsn: str, passes: int) -> dict[str, Any]:
    await migrate_url(dsn, None)
    manifest = week_manifest()
    async with Database.open(dsn, max_size=2, session_reset=False) as db:
        slots = await seed(db, manifest)
        counting = Counting(db)
        reconciler = Reconciler(
            counting,  # type: ignore[arg-type]
            manifest,
            NoSender(),
            clock=lambda: NOW,
            environ={},
            dry_run=True,
        )

        async def per_slot() -> int:
            missing = 0
            for job in manifest.jobs:
                start = NOW - timedelta(seconds=WEEK)
                for s in accounting.due_slots(cron_schedule(job), start, NOW):
                    async with counting.transaction() as tx:
                        row = await tx.fetchrow(_ONE, job.name, s)
                    missing += row["status"] is None and not row["dispatched"]
            return missing

        found = len(await reconciler.run_once())
        assert found == await per_slot() > 0
        times: dict[str, list[float]] = {"reconciler": [], "per_slot": []}
        queries: dict[str, int] = {}
        for _ in range(passes):
            for name, fn in (("reconciler", reconciler.run_once), ("per_slot", per_slot)):
                counting.queries = 0
                t0 = time.perf_counter()
                await fn()
                times[name].append((time.perf_counter() - t0) * 1000)
                queries[name] = counting.queries
    return {
        "slots": slots,
        "missing": found,
        "jobs": len(manifest.jobs),
        "queries": queries,
        "ms": {k: statistics.median(v) for k, v in times.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=20, help="passes; medians are reported")
    args = parser.parse_args(argv)
    server = pgserver.start()
    try:
        asyncio.run(pgserver.admin(server, 'CREATE DATABASE "bench"'))
        r = asyncio.run(measure(server.dsn("bench"), args.passes))
    finally:
        pgserver.stop(server)
    q, ms = r["queries"], r["ms"]
    print(
        f"reconcile: {r['jobs']} jobs x 7 days = {r['slots']} slots, {r['missing']} missing"
        f" (median of {args.passes} passes)"
    )
    verdict = "met" if q["reconciler"] <= r["jobs"] else "MISSED"
    print(
        f"  reconciler      {q['reconciler']:5d} queries  {ms['reconciler']:8.2f} ms/pass"
        f"  (goal: one query per job: {verdict})"
    )
    print(f"  slot by slot    {q['per_slot']:5d} queries  {ms['per_slot']:8.2f} ms/pass")
    print(
        f"  ratio           {q['per_slot'] / q['reconciler']:5.0f}x fewer queries,"
        f" {ms['per_slot'] / ms['reconciler']:.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
