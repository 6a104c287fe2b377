"""Shared pieces for the local-queue tests: a job whose every application leaves a row
(so a slot applied twice shows), its tables, and a consumer process to kill.

    python -m tests.integration.localqueue_support DIR CONSUMERS LEASE GRACE SLEEP

runs ``consume --transport postgres`` (the real service loop, without the scheduler) on
the manifest written into DIR, with DATABASE_URL from the environment.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgSender
from engine.core.model import Job, Manifest, Overlap, RetryPolicy
from engine.runtime.dispatch import Slot, dispatch
from tests.integration.executor_support import make_job, make_manifest

START = datetime(2020, 1, 1, tzinfo=UTC)

SETUP_SQL = """
CREATE SCHEMA IF NOT EXISTS probe;
CREATE TABLE probe.applied (slot timestamptz NOT NULL, pid integer NOT NULL);
CREATE TABLE probe.effects (slot timestamptz PRIMARY KEY);
CREATE SEQUENCE probe.tries;
CREATE FUNCTION probe.flaky(failures integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('probe.tries') <= failures THEN
        RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN 1;
END $$;
"""

# probe.applied is append-only: two applications of a slot leave two rows.
TEMPLATE = """
SELECT pg_sleep({{ params.sleep }});
INSERT INTO probe.effects (slot) VALUES ({{ slot }});
INSERT INTO probe.applied (slot, pid) VALUES ({{ slot }}, pg_backend_pid());
"""
FLAKY_TEMPLATE = """
SELECT probe.flaky(1);
INSERT INTO probe.applied (slot, pid) VALUES ({{ slot }}, pg_backend_pid());
"""


def probe_job(*, sleep: float = 0.0, name: str = "probe", paused: bool = False) -> Job:
    from dataclasses import replace

    job = make_job(
        name=name,
        overlap=Overlap.ALLOW,
        params={"sleep": sleep},
        retry=RetryPolicy(max_attempts=3, initial_delay_seconds=5, max_delay_seconds=60),
    )
    return replace(job, paused=paused)


def write_project(directory: Path, *jobs: Job, templates: dict[str, str] | None = None) -> Manifest:
    """The manifest's templates on disk, where the service reads them."""
    for job in jobs:
        (directory / job.template).write_text((templates or {}).get(job.name, TEMPLATE))
    return make_manifest(*jobs, path=str(directory / "jobs.yaml"))


def hourly(n: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(n)]


async def setup(dsn: str) -> None:
    async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
        await tx.script(SETUP_SQL)


async def enqueue(dsn: str, job: Job, slots: list[datetime], at: datetime = START) -> None:
    async with Database.open(dsn, max_size=1) as db:
        sender = PgSender("probe-jobs", clock=lambda: at)
        await dispatch(db, sender, [Slot(job, s) for s in slots], source="enqueue")


async def query(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with Database.open(dsn, max_size=1) as db:
        return await db.fetch(sql, *args)


def main(argv: list[str]) -> None:
    from engine.app.service import Options, run
    from engine.runtime.metrics import Collect

    directory, consumers, lease, grace, sleep = argv
    logging.basicConfig(level=logging.WARNING)
    manifest = write_project(Path(directory), probe_job(sleep=float(sleep)))
    options = Options(
        transport="postgres",
        consumers=int(consumers),
        lease_seconds=float(lease),
        heartbeat_seconds=float(lease) / 4,
        drain_seconds=float(grace),
        reconcile_seconds=None,
        metrics_refresh_seconds=3600,
    )

    def started(_: int | None) -> None:
        print("ready", flush=True)

    tally = asyncio.run(run(manifest, options, metrics=Collect(), started=started))
    print(tally.summary(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
