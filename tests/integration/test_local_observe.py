"""`cronwright enqueue`, and what `serve` exposes on --metrics-port: /healthz, runs by
job and status, and missing slots checked against an oracle computed here."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from engine.adapters.pg import Database
from engine.app import observe
from engine.app.service import Options
from engine.app.service import run as serve
from engine.runtime.metrics import Collect
from engine.runtime.slotbook import SlotBook
from engine.runtime.slotstore import PgSlotStore
from tests.fixtures.aio import run
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN
from tests.fixtures.cfqueues_api import serve as serve_queues_api
from tests.integration.executor_support import FakeClock, RecordingSleep
from tests.integration.localqueue_support import (
    START,
    enqueue,
    probe_job,
    query,
    setup,
    write_project,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


def cronwright(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_enqueue_sends_the_workers_body_on_the_postgres_queue_each_time_it_is_asked(
    pg_dsn: str,
) -> None:
    args = ("enqueue", "aggregate-hourly", "--at", "2026-10-31T10:00:00Z")
    first = cronwright(*args, "--transport", "postgres", dsn=pg_dsn)
    assert (first.returncode, first.stdout) == (
        0,
        "enqueued analytics.aggregate-hourly slot 2026-10-31T10:00:00Z on postgres\n",
    )
    # An operator's enqueue re-sends on purpose, even a slot already dispatched.
    second = cronwright(*args, "--transport", "postgres", dsn=pg_dsn)
    assert second.returncode == 0
    rows = run(query(pg_dsn, "SELECT queue, body, job, slot, attempts FROM cronwright.queue"))
    body = '{"type":"analytics.aggregate-hourly","scheduledFor":"2026-10-31T10:00:00Z"}'
    assert [(r["queue"], r["body"], r["job"], r["attempts"]) for r in rows] == [
        ("mauntic-analytics-jobs", body, "aggregate-hourly", 0)
    ] * 2
    claimed = run(query(pg_dsn, "SELECT source, transport FROM cronwright.dispatched"))
    assert claimed == [{"source": "enqueue", "transport": "postgres"}]


ENQUEUE_AT_10 = ("--at", "2026-10-31T10:00:00Z", "--transport", "cloudflare")


def test_enqueue_on_cloudflare_pushes_the_workers_body_to_the_queue(pg_dsn: str) -> None:
    with serve_queues_api() as api:
        api.create_queue("mauntic-analytics-jobs")
        done = subprocess.run(
            [sys.executable, "-m", "engine", "enqueue", "aggregate-hourly", *ENQUEUE_AT_10],
            cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")},
                "DATABASE_URL": pg_dsn,
                "PYTHONPATH": str(ROOT),
                "CLOUDFLARE_API_TOKEN": TOKEN,
                "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
                "CLOUDFLARE_API_BASE_URL": api.url,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout) == (
            0,
            "enqueued analytics.aggregate-hourly slot 2026-10-31T10:00:00Z on cloudflare\n",
        ), done.stderr
        bodies = [m.body for m in api.queue("mauntic-analytics-jobs").messages]
    assert bodies == [
        {"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:00:00Z"}
    ]
    rows = run(query(pg_dsn, "SELECT job, source, transport FROM cronwright.dispatched"))
    assert rows == [{"job": "aggregate-hourly", "source": "enqueue", "transport": "cloudflare"}]


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = (await asyncio.wait_for(reader.read(), 10)).decode()
    writer.close()
    head, _, body = raw.partition("\r\n\r\n")
    return head.splitlines()[0], body


def test_serve_exposes_healthz_and_runs_by_job_and_status_on_its_metrics_port(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job()
    manifest = write_project(tmp_path, job)
    run(enqueue(pg_dsn, job, [START, START + timedelta(hours=1)]))
    clock = FakeClock(START + timedelta(hours=1, minutes=5))

    async def scenario() -> dict[str, tuple[str, str]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            from engine.adapters.pgqueue import PgQueue

            await PgQueue(db, "probe-jobs", clock=clock).put_raw(['{"type":"nope"}'])
        ports: list[int] = []
        options = Options(transport="postgres", consumers=2, metrics_port=0,
                          metrics_refresh_seconds=0.05, reconcile_seconds=None)  # fmt: skip
        task = asyncio.create_task(
            serve(
                manifest,
                options,
                dsn=pg_dsn,
                clock=clock,
                sleep=RecordingSleep(),
                metrics=Collect(),
                started=lambda p: ports.append(p or 0),
            )
        )
        while len(await query(pg_dsn, "SELECT 1 FROM cronwright.queue")) or not ports:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a refresh of the gauges after the last run
        got = {p: await _get(ports[0], p) for p in ("/healthz", "/metrics", "/nope")}
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 30)
        return got

    got = run(scenario())
    assert got["/healthz"] == ("HTTP/1.1 200 OK", "ok\n")
    assert got["/nope"][0] == "HTTP/1.1 404 Not Found"
    status, text = got["/metrics"]
    assert status == "HTTP/1.1 200 OK"
    lines = set(text.splitlines())
    assert {
        'cronwright_runs_total{job="probe",status="succeeded"} 2.0',
        'cronwright_runs_total{job="unknown",status="dead_lettered"} 1.0',
        'cronwright_run_duration_seconds_count{job="probe"} 2.0',
        'cronwright_queue_depth{queue="probe-jobs",state="ready"} 0.0',
        'cronwright_missing_slots{job="probe"} 0.0',
        'cronwright_oldest_missing_slot_age_seconds{job="probe"} 0.0',
    } <= lines


def test_the_missing_slot_gauges_count_due_slots_with_no_record_since_the_history_start(
    pg_dsn: str, tmp_path: Path
) -> None:
    job = probe_job()  # hourly
    manifest = write_project(tmp_path, job)
    now = START + timedelta(hours=30, minutes=10)
    recorded = {7: "succeeded", 8: "succeeded", 9: "dead_lettered", 10: "failed", 29: "succeeded"}
    queued = START + timedelta(hours=11)
    pause = (START + timedelta(hours=15), START + timedelta(hours=20))

    async def scenario() -> dict[str, float]:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO cronwright.jobs VALUES ('probe', $1)", START + timedelta(hours=2)
                )
                await tx.execute(
                    "INSERT INTO cronwright.dispatched (job, slot, source, transport)"
                    " VALUES ('probe', $1, 'scheduler', 'postgres')",
                    queued,
                )
                for hour, status in recorded.items():
                    await tx.execute(
                        "INSERT INTO cronwright.runs (job, slot, status, attempt, message_id,"
                        " started_at) VALUES ('probe', $1, $2, 1, 'm', $1)",
                        START + timedelta(hours=hour),
                        status,
                    )
                await tx.execute(
                    "INSERT INTO cronwright.pauses (job, paused_from, resumed_at) VALUES"
                    " ('probe', $1, $2)",
                    *pause,
                )
            metrics = observe.Metrics(manifest)
            book = SlotBook(PgSlotStore(db), manifest.jobs, grace=timedelta(0), register=True)

            async def no_depth() -> dict[str, int | None]:
                return {}

            await observe.refresh(metrics, book, "probe-jobs", no_depth, now)
            return {
                name: metrics.registry.get_sample_value(name, {"job": "probe"}) or 0.0
                for name in (
                    "cronwright_missing_slots",
                    "cronwright_oldest_missing_slot_age_seconds",
                )
            }

    # The oracle: the whole hours in the catch-up window (a day back from now; the job
    # was first seen before that) that have no ledger row, were not sent and are not
    # inside the pause.
    lower = now - timedelta(days=1)
    hours = [START + timedelta(hours=h) for h in range(31)]
    expected = [
        t
        for t in hours
        if lower <= t <= now
        and (t - START) // timedelta(hours=1) not in recorded
        and t != queued
        and not (pause[0] <= t < pause[1])
    ]
    assert run(scenario()) == {
        "cronwright_missing_slots": float(len(expected)),
        "cronwright_oldest_missing_slot_age_seconds": (now - expected[0]).total_seconds(),
    }
