"""What `serve` runs beside its consumers: the reconciler, which enqueues due slots no
scheduler sent, and the daily prune of finished history."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from croniter import croniter

from devtools.manifests import probe_manifest
from engine.adapters.pg import Database
from engine.app import housekeeping
from engine.app.serve import Options, serve
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run
from tests.integration.executor_support import FakeClock, RecordingSleep
from tests.integration.localqueue_support import START, probe_job, query, setup, write_project

pytestmark = pytest.mark.postgres

NOW = START + timedelta(hours=5, minutes=5)
GRACE = timedelta(seconds=600)


def test_serve_with_a_reconciler_runs_every_slot_no_scheduler_sent_exactly_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job()
    manifest = write_project(tmp_path, job)
    # The oracle: the hourly slots due in the catch-up window (a day) and past the grace.
    it = croniter(job.cron, NOW - timedelta(seconds=job.catch_up.within_seconds))
    due = []
    while (t := it.get_next(type(NOW))) <= NOW - GRACE:
        due.append(t)
    options = Options(consumers=2, scheduler=False, reconcile_seconds=0.05, max_messages=len(due))
    tally = run(
        serve(
            manifest,
            options,
            dsn=pg_dsn,
            clock=FakeClock(NOW),
            sleep=RecordingSleep(),
            metrics=Collect(),
            handle_signals=False,
        )
    )
    assert tally.statuses["succeeded"] == len(due) == 23
    applied = run(query(pg_dsn, "SELECT slot FROM probe.applied ORDER BY slot"))
    assert [r["slot"] for r in applied] == due
    sources = run(query(pg_dsn, "SELECT DISTINCT source FROM cronwright.dispatched"))
    assert sources == [{"source": "reconciler"}]


def test_the_daily_prune_deletes_only_what_retention_no_longer_keeps(pg_dsn: str) -> None:
    job = probe_job()
    manifest = probe_manifest(job)
    old = NOW - timedelta(days=manifest.retention.dead_letters_days + 1)
    recent = NOW - timedelta(days=1)

    async def scenario() -> list[dict[str, object]]:
        async with Database.open(pg_dsn, max_size=2) as db:
            for reason, replayed in (("old", old), ("recent", recent), ("pending", None)):
                await db.fetch(
                    "INSERT INTO cronwright.dead_letters (job, body, reason, error_class,"
                    " attempts, created_at, replayed_at) VALUES ($1, '{}', $2, 'x', 1, $3, $4)"
                    " RETURNING id",
                    job.name,
                    reason,
                    old,
                    replayed,
                )
            stop = asyncio.Event()
            loop = asyncio.create_task(
                housekeeping.prune_daily(db, manifest, lambda: NOW, stop, interval=3600)
            )
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.wait_for(loop, 10)
            return await db.fetch("SELECT reason FROM cronwright.dead_letters ORDER BY reason")

    assert run(scenario()) == [{"reason": "pending"}, {"reason": "recent"}]
