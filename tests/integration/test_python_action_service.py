"""A python action in a real `serve` process on an accelerated clock, killed (SIGKILL)
while its function sleeps inside the job's transaction, restarted, and sent slots that
already succeeded again: every slot is applied exactly once, and the rows the function
appended in its transaction agree with the ledger at every point. The oracle is
``probe.calls``, never the runtime's own counts."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtools.simclock import SimClock
from tests.fixtures.aio import run
from tests.integration.localqueue_support import query
from tests.integration.pyaction_support import CALLS_SQL, project
from tests.integration.service_support import (
    SETUP_SQL,
    Service,
    running,
    wait_until,
    write_project,
)

pytestmark = pytest.mark.postgres

START = datetime(2026, 11, 2, 10, 0, 30, tzinfo=UTC)
SPEED = 60.0  # a simulated minute per real second
MINUTE = timedelta(minutes=1)
SERVICE = {
    "scheduler": True,
    "consumers": 2,
    "reconcile_seconds": 1.0,
    "lease_seconds": 600,  # simulated: a killed run's message comes back 10 s later
    "heartbeat_seconds": 1.0,
    "drain_seconds": 2.0,
    "prune_seconds": None,
}


def setup(dsn: str) -> None:
    async def go() -> None:
        from engine.adapters.pg import Database

        async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
            await tx.script(SETUP_SQL + CALLS_SQL)

    run(go())


def called(dsn: str) -> list[datetime]:
    """The slots the function applied, in commit order."""
    return [r["slot"] for r in run(query(dsn, "SELECT slot FROM probe.calls ORDER BY at"))]


def succeeded(dsn: str) -> dict[datetime, int]:
    rows = run(query(dsn, "SELECT slot, attempt FROM cronwright.runs WHERE status = 'succeeded'"))
    return {r["slot"]: r["attempt"] for r in rows}


def asleep_in_the_action(dsn: str) -> bool:
    rows = run(
        query(
            dsn,
            "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
            " AND query LIKE '%pyaction:sleep%' AND pid <> pg_backend_pid()",
        )
    )
    return bool(rows)


def no_other_backends(dsn: str) -> bool:
    """Every connection of the killed process has ended: nothing it sent is pending."""
    rows = run(
        query(
            dsn,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND datname = current_database() AND pid <> pg_backend_pid()",
        )
    )
    return rows == [{"n": 0}]


def assert_calls_and_ledger_agree(dsn: str) -> list[datetime]:
    slots = called(dsn)
    assert [s for s, n in Counter(slots).items() if n > 1] == []  # none applied twice
    assert sorted(succeeded(dsn)) == sorted(slots)
    return slots


def minutes_between(first: datetime, last: datetime) -> list[datetime]:
    return [first + i * MINUTE for i in range(int((last - first) / MINUTE) + 1)]


def test_a_python_action_runs_each_slot_once_through_a_sigkill_mid_run_and_redeliveries(
    pg_dsn: str, tmp_path: Path
) -> None:
    setup(pg_dsn)
    with project(tmp_path) as proj:
        jobs = {"sync": {"python": proj.target("record"), "params": {"sleep": 0.3}}}
        manifest = write_project(tmp_path, jobs)
        clock = SimClock(START, SPEED, tmp_path / "wall0")
        svc = Service(manifest=manifest, dsn=pg_dsn, clock=clock, options=dict(SERVICE))
        with running(svc):
            first = svc.start()
            svc.clock.go()
            wait_until(lambda: len(called(pg_dsn)) >= 2, "two slots applied")
            wait_until(lambda: asleep_in_the_action(pg_dsn), "a run asleep in its action")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            # The server rolls the dead client's transaction back once its sleep ends.
            wait_until(lambda: no_other_backends(pg_dsn), "the killed process's backends gone")
            leased = run(
                query(pg_dsn, "SELECT slot FROM cronwright.queue WHERE lease_id IS NOT NULL")
            )
            in_flight = {r["slot"] for r in leased}
            assert in_flight  # killed holding the slot it was running
            before = assert_calls_and_ledger_agree(pg_dsn)
            assert not in_flight & set(before)

            svc.start()
            # Slots that succeeded, delivered again.
            ids = [
                run(
                    query(
                        pg_dsn,
                        "INSERT INTO cronwright.queue (queue, body, job, slot, attempts,"
                        " visible_at, enqueued_at) VALUES ('probe-jobs', $1, 'sync', $2, 0, $3,"
                        " $3) RETURNING id",
                        f'{{"type": "sync", "scheduledFor": "{slot:%Y-%m-%dT%H:%M:%SZ}"}}',
                        slot,
                        START,
                    )
                )[0]["id"]
                for slot in before[:2]
            ]
            restarted = svc.clock().replace(second=0, microsecond=0)

            def caught_up() -> bool:
                slots = called(pg_dsn)
                return (
                    bool(slots)
                    and max(slots) >= restarted + 3 * MINUTE
                    and (in_flight <= set(slots))
                )

            wait_until(caught_up, "the killed slot again and three slots after the restart")
            left = "SELECT count(*) AS n FROM cronwright.queue WHERE id = ANY($1)"
            wait_until(
                lambda: run(query(pg_dsn, left, ids)) == [{"n": 0}], "the redeliveries acked"
            )
            time.sleep(0.5)  # a run committing now would show up below
            codes = svc.stop_all()
    assert [c for c, _ in codes] == [-signal.SIGKILL, 0], codes
    slots = assert_calls_and_ledger_agree(pg_dsn)
    first_slot = START.replace(second=0) + MINUTE
    assert sorted(slots) == minutes_between(first_slot, max(slots))  # every slot, once
    attempts = succeeded(pg_dsn)
    assert {attempts[s] for s in in_flight} == {2}  # the killed delivery came back
    statuses = run(query(pg_dsn, "SELECT DISTINCT status FROM cronwright.runs"))
    assert statuses == [{"status": "succeeded"}]
