"""`serve` as a new user and an operator meet it, in real processes on an accelerated clock:
a first start on an empty ledger, a restart after an outage, a refresh-style (`latest`) job
through a restart, and poison rows inserted while it runs. Every check is an oracle over
rows the jobs append, never the implementation's own counts."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.simclock import SimClock
from tests.fixtures.aio import run
from tests.integration.localqueue_support import query
from tests.integration.service_support import (
    APPEND,
    FAILING,
    REFRESH,
    Service,
    applied,
    minutes_between,
    prepare,
    running,
    wait_until,
    write_project,
)

pytestmark = pytest.mark.postgres

START = datetime(2026, 11, 2, 10, 0, 30, tzinfo=UTC)  # half a minute into 10:00
SPEED = 60.0  # a simulated minute per real second
MINUTE = timedelta(minutes=1)
SERVICE = {
    "scheduler": True,
    "consumers": 2,
    "reconcile_seconds": 1.0,  # a simulated minute
    "lease_seconds": 600,  # simulated: 10 s of real time
    "heartbeat_seconds": 1.0,
    "drain_seconds": 2.0,
    "prune_seconds": None,
}


def service(tmp_path: Path, dsn: str, jobs: dict[str, dict[str, Any]]) -> Service:
    manifest = write_project(tmp_path, jobs)
    clock = SimClock(START, SPEED, tmp_path / "wall0")
    return Service(manifest=manifest, dsn=dsn, clock=clock, options=dict(SERVICE))


def test_a_first_serve_of_a_new_project_runs_only_the_slots_due_after_it_started(
    pg_dsn: str, tmp_path: Path
) -> None:
    """Three every-minute jobs, one of them always failing, on an empty database with the
    default catch-up (all, within a day): nothing from before the first start is owed."""
    prepare(pg_dsn)
    jobs = {"a": {"template": APPEND}, "b": {"template": APPEND}, "broken": {"template": FAILING}}
    svc = service(tmp_path, pg_dsn, jobs)
    with running(svc):
        svc.start()
        svc.clock.go()
        wait_until(lambda: len(applied(pg_dsn, "a")) >= 4, "four slots of a")
        codes = svc.stop_all()
    assert [c for c, _ in codes] == [0], codes
    first = START.replace(second=0) + MINUTE
    for job in ("a", "b"):
        slots = applied(pg_dsn, job)
        assert slots == minutes_between(first, max(slots)), job  # each once, none before
    letters = run(query(pg_dsn, "SELECT slot, error_class FROM cronwright.dead_letters"))
    assert letters and {r["error_class"] for r in letters} == {"data_exception"}
    assert min(r["slot"] for r in letters) == first
    early = run(
        query(
            pg_dsn,
            "SELECT (SELECT count(*) FROM cronwright.runs WHERE slot < $1)"
            " + (SELECT count(*) FROM cronwright.dispatched WHERE slot < $1) AS n",
            START,
        )
    )
    assert early == [{"n": 0}]


def test_a_restart_fills_the_outages_gap_within_one_reconcile_interval(
    pg_dsn: str, tmp_path: Path
) -> None:
    prepare(pg_dsn)
    svc = service(tmp_path, pg_dsn, {"a": {"template": APPEND}})
    with running(svc):
        first = svc.start()
        svc.clock.go()
        wait_until(lambda: len(applied(pg_dsn, "a")) >= 2, "two slots before the outage")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        down = svc.clock()
        time.sleep(4)  # four simulated minutes with no scheduler at all
        restart = svc.clock()
        gap = [
            t
            for t in minutes_between(down.replace(second=0, microsecond=0), restart)
            if t > max(applied(pg_dsn, "a"))
        ]
        assert len(gap) >= 3
        svc.start()
        started = time.monotonic()
        wait_until(lambda: set(gap) <= set(applied(pg_dsn, "a")), "the gap's slots", timeout=30)
        took = time.monotonic() - started
        wait_until(lambda: len(applied(pg_dsn, "a")) >= len(gap) + 4, "slots after the restart")
        svc.stop_all()
    # Within one reconcile interval (1 s) of the restart, plus the runs themselves.
    assert took < SERVICE["reconcile_seconds"] + 2.0, took
    slots = applied(pg_dsn, "a")
    first_slot = START.replace(second=0) + MINUTE
    assert sorted(slots) == minutes_between(first_slot, max(slots))  # every slot, once
    sources = run(
        query(pg_dsn, "SELECT slot, source FROM cronwright.dispatched WHERE slot = ANY($1)", gap)
    )
    assert {r["source"] for r in sources} == {"reconciler"}


def test_a_refresh_style_job_never_goes_back_in_time_through_a_restart(
    pg_dsn: str, tmp_path: Path
) -> None:
    """A `latest` job's table holds the slot it was refreshed for. Killed mid-stream and
    restarted after an outage, it must never be refreshed for an older slot than it
    already holds: the outage's older slots are superseded, not run after newer ones."""
    prepare(pg_dsn)
    jobs = {"refresh": {"template": REFRESH, "catch_up": {"policy": "latest"}}}
    svc = service(tmp_path, pg_dsn, jobs)
    with running(svc):
        first = svc.start()
        svc.clock.go()
        wait_until(lambda: len(applied(pg_dsn, "refresh")) >= 2, "two refreshes")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # The slot the killed process had in flight: its lease lapses three minutes after
        # the restart, when newer slots have run.
        in_flight = max(applied(pg_dsn, "refresh")) + MINUTE
        body = json.dumps(
            {"type": "refresh", "scheduledFor": in_flight.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )
        run(
            query(
                pg_dsn,
                "INSERT INTO cronwright.queue (queue, body, job, slot, attempts, visible_at,"
                " enqueued_at) VALUES ('probe-jobs', $1, 'refresh', $2, 1, $3, $2) RETURNING id",
                body,
                in_flight,
                svc.clock() + timedelta(minutes=8),
            )
        )
        time.sleep(5)
        svc.start()
        wait_until(
            lambda: (
                run(query(pg_dsn, "SELECT status FROM cronwright.runs WHERE slot = $1", in_flight))
                == [{"status": "superseded"}]
            ),
            "the lapsed lease's delivery, superseded",
        )
        svc.stop_all()
    slots = applied(pg_dsn, "refresh")  # in commit order
    assert slots == sorted(slots) and len(set(slots)) == len(slots), slots
    assert in_flight not in slots
    held = run(query(pg_dsn, "SELECT slot FROM probe.refreshed"))
    assert held == [{"slot": slots[-1]}]
    statuses = run(
        query(pg_dsn, "SELECT status, count(*) AS n FROM cronwright.runs GROUP BY status")
    )
    assert {r["status"] for r in statuses} <= {"succeeded", "superseded"}


POISON_ROWS = [
    ('{"type": "a", "scheduledFor": "0001-01-01T00:00:00Z"}', 1),
    ('{"type": "a", "scheduledFor": "2999-01-01T00:00:00Z"}', 1),
    ('{"type": "nope"}', 2_147_483_647),
    ("x" * 1_000_000, 1),
    ('{"type": "a", "scheduledFor": {"nested": [1, 2, {"deeper": null}]}}', 1),
]


def test_serve_stays_up_through_poison_rows_and_dead_letters_each_with_its_reason(
    pg_dsn: str, tmp_path: Path
) -> None:
    prepare(pg_dsn)
    svc = service(tmp_path, pg_dsn, {"a": {"template": APPEND}})
    with running(svc):
        proc = svc.start()
        svc.clock.go()
        wait_until(lambda: len(applied(pg_dsn, "a")) >= 1, "a first slot")
        for body, attempts in POISON_ROWS:
            run(
                query(
                    pg_dsn,
                    "INSERT INTO cronwright.queue (queue, body, attempts, visible_at, enqueued_at)"
                    " VALUES ('probe-jobs', $1, $2, $3, $3) RETURNING id",
                    body,
                    attempts,
                    START,
                )
            )
        wait_until(
            lambda: (
                run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.dead_letters"))
                == [{"n": len(POISON_ROWS)}]
            ),
            "a dead letter for each poison row",
        )
        wait_until(lambda: len(applied(pg_dsn, "a")) >= 5, "slots after the poison")
        assert proc.poll() is None  # still up
        codes = svc.stop_all()
    assert [c for c, _ in codes] == [0]
    letters = run(query(pg_dsn, "SELECT reason, attempts FROM cronwright.dead_letters ORDER BY id"))
    reasons = [r["reason"] for r in letters]
    assert any("before 1970" in r for r in reasons), reasons
    assert any("after" in r and "2999" in r for r in reasons), reasons
    assert any(r.startswith("unknown message type 'nope'") for r in reasons), reasons
    assert any(r.startswith("message body is not JSON") for r in reasons), reasons
    assert any("'scheduledFor' must be a string" in r for r in reasons), reasons
    assert 2_147_483_647 in [r["attempts"] for r in letters]
    slots = applied(pg_dsn, "a")
    assert sorted(slots) == minutes_between(START.replace(second=0) + MINUTE, max(slots))
    left = run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.queue WHERE job IS NULL"))
    assert left == [{"n": 0}]
    json.dumps(reasons)  # every reason is text a log or a page can carry
