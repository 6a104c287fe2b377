"""One clock for shared state: two consumers of the Postgres queue whose hosts' clocks are
five minutes ahead and five minutes behind (libfaketime, Debian's `faketime`) share the
work with no redelivery caused by the skew and no starvation. Leases, visibility and the
"now" a slot is checked against are the database's; and a `serve` whose host is ten
minutes off schedules by the database's minute too."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgSender
from engine.manifest import load
from engine.runtime.dispatch import Slot, dispatch
from tests.fixtures.aio import run
from tests.fixtures.need import missing
from tests.integration.localqueue_support import query
from tests.integration.service_support import (
    APPEND,
    SETUP_SQL,
    cronwright,
    libfaketime,
    prepare,
    wait_until,
    write_project,
)

pytestmark = pytest.mark.postgres

SLOW = """
SELECT pg_sleep(0.5);
INSERT INTO probe.applied (job, slot) VALUES ({{ job.name }}, {{ slot }});
"""
MESSAGES = 40


def consumer(manifest: Path, dsn: str, name: str, skew: str, lib: str) -> subprocess.Popen[str]:
    return cronwright(
        manifest,
        f"{dsn}?application_name={name}",
        *("consume", "--transport", "postgres", "--consumers", "2", "--lease-seconds", "6"),
        *("--reconcile-interval", "0", "--log-level", "warning"),
        env={"LD_PRELOAD": lib, "FAKETIME": skew},
    )


def test_consumers_five_minutes_ahead_and_behind_share_the_queue_without_redelivery(
    pg_dsn: str, tmp_path: Path
) -> None:
    lib = libfaketime()
    if lib is None:
        missing("libfaketime (Debian's faketime package) is not installed")
    manifest = write_project(tmp_path, {"slow": {"template": SLOW}})

    async def setup() -> None:
        async with Database.open(pg_dsn, max_size=1) as db, db.transaction() as tx:
            await tx.script(
                SETUP_SQL + "ALTER TABLE probe.applied ADD COLUMN who text"
                " DEFAULT current_setting('application_name');"
            )

    run(setup())
    procs = [
        consumer(manifest, pg_dsn, "ahead", "+5m", lib),
        consumer(manifest, pg_dsn, "behind", "-5m", lib),
    ]
    try:
        wait_until(
            lambda: (
                len(run(query(pg_dsn, "SELECT job FROM cronwright.jobs"))) == 1
                and all(p.poll() is None for p in procs)
            ),
            "both consumers up",
        )
        time.sleep(1.0)  # both listening

        async def enqueue() -> None:
            job = load(manifest).find_job("slow")
            async with Database.open(pg_dsn, max_size=1) as db:
                now = (await db.fetch("SELECT date_trunc('minute', now()) AS t"))[0]["t"]
                slots = [Slot(job, now - timedelta(minutes=k)) for k in range(MESSAGES)]
                await dispatch(db, PgSender("probe-jobs"), slots, source="enqueue")

        run(enqueue())
        wait_until(
            lambda: (
                run(query(pg_dsn, "SELECT count(*) AS n FROM probe.applied")) == [{"n": MESSAGES}]
            ),
            "every message run",
        )
        time.sleep(8)  # longer than a lease: a stolen or lapsed one would show now
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    rows = run(query(pg_dsn, "SELECT slot, who FROM probe.applied"))
    assert len({r["slot"] for r in rows}) == MESSAGES == len(rows)  # each once
    assert {r["who"] for r in rows} == {"ahead", "behind"}  # nobody starved
    attempts = run(query(pg_dsn, "SELECT DISTINCT attempt FROM cronwright.runs"))
    assert attempts == [{"attempt": 1}]  # no delivery was a second one
    assert run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.queue")) == [{"n": 0}]


@pytest.mark.parametrize("skew", ["+10m", "-10m"])
def test_serve_on_a_host_ten_minutes_off_runs_each_slot_on_the_databases_minute(
    pg_dsn: str, tmp_path: Path, skew: str
) -> None:
    lib = libfaketime()
    if lib is None:
        missing("libfaketime (Debian's faketime package) is not installed")
    manifest = write_project(tmp_path, {"tick": {"template": APPEND}})
    prepare(pg_dsn)
    args = ("serve", "--consumers", "1", "--reconcile-interval", "5")
    proc = cronwright(manifest, pg_dsn, *args, env={"LD_PRELOAD": lib, "FAKETIME": skew})
    try:
        wait_until(
            lambda: (
                run(query(pg_dsn, "SELECT count(*) AS n FROM probe.applied")) != [{"n": 0}]
                or proc.poll() is not None
            ),
            "a slot run",
            timeout=75,
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    warned = [line for line in err.splitlines() if "clock is 600" in line]
    assert len(warned) == 1 and ("ahead of" if skew == "+10m" else "behind") in warned[0]
    rows = run(query(pg_dsn, "SELECT slot, at FROM probe.applied"))
    # Sent when the database's clock reached the slot: not ten minutes early (refused as
    # not due, dead-lettered) nor ten minutes late.
    assert len(rows) == 1 and timedelta(0) <= rows[0]["at"] - rows[0]["slot"] < timedelta(
        seconds=5
    ), rows
    letters = run(query(pg_dsn, "SELECT reason FROM cronwright.dead_letters"))
    assert letters == []
