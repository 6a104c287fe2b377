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
from engine.app import service
from engine.app.health import Health
from engine.app.service import Options
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run
from tests.integration.executor_support import FakeClock, RecordingSleep
from tests.integration.localqueue_support import START, probe_job, query, setup, write_project

pytestmark = pytest.mark.postgres

NOW = START + timedelta(hours=5, minutes=5)


def test_serve_with_a_reconciler_runs_every_slot_no_scheduler_sent_exactly_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job()
    manifest = write_project(tmp_path, job)
    first_seen = NOW - timedelta(days=2)  # deployed two days ago, then nothing ran
    run(query(pg_dsn, "INSERT INTO cronwright.jobs VALUES ('probe', $1) RETURNING job", first_seen))
    # The oracle: the hourly slots due in the catch-up window (a day), up to now: on the
    # Postgres transport the scheduler records what it sends, so nothing waits a grace.
    it = croniter(job.cron, NOW - timedelta(seconds=job.catch_up.within_seconds))
    due = []
    while (t := it.get_next(type(NOW))) <= NOW:
        due.append(t)
    options = Options(
        transport="postgres", consumers=2, reconcile_seconds=0.05, max_messages=len(due)
    )
    tally = run(
        service.run(
            manifest,
            options,
            dsn=pg_dsn,
            clock=FakeClock(NOW),
            sleep=RecordingSleep(),
            metrics=Collect(),
            handle_signals=False,
        )
    )
    assert tally.statuses["succeeded"] == len(due) == 24
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
                service.every(
                    3600, "prune", lambda: service.prune(db, manifest, NOW), stop, Health()
                )
            )
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.wait_for(loop, 10)
            return await db.fetch("SELECT reason FROM cronwright.dead_letters ORDER BY reason")

    assert run(scenario()) == [{"reason": "pending"}, {"reason": "recent"}]
