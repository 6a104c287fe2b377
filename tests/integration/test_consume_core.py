"""The scheduling core's behaviours through the paths other than `serve`, on a project that
is not the example (issue 17): `consume --transport postgres`, which has no scheduler (its
slots reach the queue from its reconciler alone), and the `cronwright reconcile` command.

- A first start on an empty ledger owes nothing from before the jobs were first seen;
  the slots that come due after it are enqueued (and, through `consume`, run) once each.
- A restart of `consume` fills the outage's gap within one reconcile interval.
- A refresh-style (`latest`) job never goes back in time through a `consume` restart.
- The reconciler's info line ("reconciler enqueued N missing slots of JOB ...") is
  printed on stderr by the real `serve` and `consume --transport postgres` processes.

Every check is an oracle over rows the probe jobs append, or over what the real command
prints, never the implementation's own counts. The `serve` versions of the first three
are in test_service_lifecycle.py.
"""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.simclock import SimClock
from tests.fixtures.aio import run
from tests.fixtures.need import missing
from tests.integration.localqueue_support import query
from tests.integration.service_support import (
    APPEND,
    FAILING,
    REFRESH,
    Service,
    applied,
    cronwright,
    libfaketime,
    minutes_between,
    prepare,
    running,
    wait_until,
    write_project,
)

pytestmark = pytest.mark.postgres

START = datetime(2026, 11, 2, 10, 0, 30, tzinfo=UTC)  # half a minute into 10:00
FIRST = START.replace(second=0) + timedelta(minutes=1)  # the first slot due after it
SPEED = 60.0  # a simulated minute per real second
MINUTE = timedelta(minutes=1)
RECONCILE_SECONDS = 1.0  # a simulated minute
# `consume --transport postgres`: the composition of `serve` without the scheduler (what
# engine/app/cli/queue_cmds.py's cmd_consume asks of engine.app.service.run).
CONSUME: dict[str, Any] = {
    "scheduler": False,
    "consumers": 2,
    "reconcile_seconds": RECONCILE_SECONDS,
    "lease_seconds": 600,  # simulated: 10 s of real time
    "heartbeat_seconds": 1.0,
    "drain_seconds": 2.0,
    "prune_seconds": None,
}


def consume(tmp_path: Path, dsn: str, jobs: dict[str, dict[str, Any]]) -> Service:
    manifest = write_project(tmp_path, jobs)
    clock = SimClock(START, SPEED, tmp_path / "wall0")
    return Service(manifest=manifest, dsn=dsn, clock=clock, options=dict(CONSUME))


def sources(dsn: str) -> set[str]:
    rows = run(query(dsn, "SELECT DISTINCT source FROM cronwright.dispatched"))
    return {r["source"] for r in rows}


def idle(dsn: str) -> bool:
    """Whether no message waits or runs: a kill now leaves nothing in flight."""
    return run(query(dsn, "SELECT count(*) AS n FROM cronwright.queue")) == [{"n": 0}]


def explain(dsn: str, svc: Service) -> str:
    """What the ledger and the processes say, for a failure's message."""
    tables = {
        "dispatched": "SELECT job, slot, source FROM cronwright.dispatched ORDER BY slot",
        "runs": "SELECT job, slot, status, attempt, error FROM cronwright.runs ORDER BY slot",
        "queue": "SELECT job, slot, attempts, visible_at, lease_id FROM cronwright.queue",
        "dead_letters": "SELECT job, slot, reason FROM cronwright.dead_letters ORDER BY slot",
    }
    lines = [f"now {svc.clock()}"]
    lines += [f"{name}: {run(query(dsn, sql))}" for name, sql in tables.items()]
    lines += [f"exit {code}: {err[-4000:]}" for code, err in svc.stop_all()]
    return "\n".join(lines)


def wait_or_explain(dsn: str, svc: Service, predicate: Any, what: str, timeout: float) -> None:
    try:
        wait_until(predicate, what, timeout=timeout)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{explain(dsn, svc)}") from None


# --- consume --transport postgres, on an accelerated clock ------------------------------


def test_a_first_consume_of_a_new_project_runs_only_the_slots_due_after_it_started(
    pg_dsn: str, tmp_path: Path
) -> None:
    """Three every-minute jobs, one of them always failing, on an empty database with the
    default catch-up (all, within a day), consumed with no scheduler anywhere: the
    reconciler owes nothing from before the first start, and enqueues every slot after."""
    prepare(pg_dsn)
    jobs = {"a": {"template": APPEND}, "b": {"template": APPEND}, "broken": {"template": FAILING}}
    svc = consume(tmp_path, pg_dsn, jobs)
    with running(svc):
        svc.start()
        svc.clock.go()
        wait_or_explain(pg_dsn, svc, lambda: len(applied(pg_dsn, "a")) >= 4, "four slots", 60)
        codes = svc.stop_all()
    assert [c for c, _ in codes] == [0], codes
    for job in ("a", "b"):
        slots = applied(pg_dsn, job)
        assert slots == minutes_between(FIRST, max(slots)), job  # each once, none before
    letters = run(query(pg_dsn, "SELECT slot, error_class FROM cronwright.dead_letters"))
    assert letters and {r["error_class"] for r in letters} == {"data_exception"}
    assert min(r["slot"] for r in letters) == FIRST
    early = run(
        query(
            pg_dsn,
            "SELECT (SELECT count(*) FROM cronwright.runs WHERE slot < $1)"
            " + (SELECT count(*) FROM cronwright.dispatched WHERE slot < $1) AS n",
            START,
        )
    )
    assert early == [{"n": 0}]
    assert sources(pg_dsn) == {"reconciler"}  # no scheduler in this process


def test_a_consume_restart_fills_the_outages_gap_within_one_reconcile_interval(
    pg_dsn: str, tmp_path: Path
) -> None:
    prepare(pg_dsn)
    svc = consume(tmp_path, pg_dsn, {"a": {"template": APPEND}})
    with running(svc):
        first = svc.start()
        svc.clock.go()
        wait_until(
            lambda: len(applied(pg_dsn, "a")) >= 2 and idle(pg_dsn), "two slots before the outage"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        down = svc.clock()
        time.sleep(4)  # four simulated minutes with no process at all
        restart = svc.clock()
        gap = [
            t
            for t in minutes_between(down.replace(second=0, microsecond=0), restart)
            if t > max(applied(pg_dsn, "a"))
        ]
        assert len(gap) >= 3
        svc.start()
        started = time.monotonic()
        wait_or_explain(
            pg_dsn, svc, lambda: set(gap) <= set(applied(pg_dsn, "a")), "the gap's slots", 30
        )
        took = time.monotonic() - started
        wait_or_explain(
            pg_dsn, svc, lambda: len(applied(pg_dsn, "a")) >= len(gap) + 4, "slots after it", 60
        )
        svc.stop_all()
    # Within one reconcile interval (1 s) of the restart, plus the runs themselves.
    assert took < RECONCILE_SECONDS + 2.0, took
    slots = applied(pg_dsn, "a")
    assert sorted(slots) == minutes_between(FIRST, max(slots))  # every slot, once
    assert sources(pg_dsn) == {"reconciler"}


def test_a_refresh_style_job_never_goes_back_in_time_through_a_consume_restart(
    pg_dsn: str, tmp_path: Path
) -> None:
    """A `latest` job's table holds the slot it was refreshed for. Its consumer killed
    mid-stream and restarted after an outage, it must never be refreshed for an older slot
    than it already holds: the outage's older slots are not run after newer ones, and the
    slot the killed process had in flight is superseded when its lease lapses."""
    prepare(pg_dsn)
    jobs = {"refresh": {"template": REFRESH, "catch_up": {"policy": "latest"}}}
    svc = consume(tmp_path, pg_dsn, jobs)
    with running(svc):
        first = svc.start()
        svc.clock.go()
        wait_until(lambda: len(applied(pg_dsn, "refresh")) >= 2 and idle(pg_dsn), "two refreshes")
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
        wait_or_explain(
            pg_dsn,
            svc,
            lambda: (
                run(query(pg_dsn, "SELECT status FROM cronwright.runs WHERE slot = $1", in_flight))
                == [{"status": "superseded"}]
            ),
            "the lapsed lease's delivery, superseded",
            60,
        )
        svc.stop_all()
    slots = applied(pg_dsn, "refresh")  # in commit order
    assert slots == sorted(slots) and len(set(slots)) == len(slots), slots
    assert len(slots) >= 3 and slots[-1] > in_flight  # something ran after the restart
    assert in_flight not in slots
    held = run(query(pg_dsn, "SELECT slot FROM probe.refreshed"))
    assert held == [{"slot": slots[-1]}]
    statuses = run(
        query(pg_dsn, "SELECT status, count(*) AS n FROM cronwright.runs GROUP BY status")
    )
    assert {r["status"] for r in statuses} <= {"succeeded", "superseded"}


# --- cronwright reconcile, at times set by libfaketime ----------------------------------


def reconcile_at(manifest: Path, dsn: str, at: datetime, *args: str) -> tuple[list[str], str]:
    """`cronwright reconcile --transport postgres ARGS` run by a host whose clock reads
    ``at`` when it starts: its stdout's lines, and its stderr."""
    lib = libfaketime()
    assert lib is not None
    env = {
        "LD_PRELOAD": lib,
        "FAKETIME": at.strftime("@%Y-%m-%d %H:%M:%S"),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": "UTC",
    }
    proc = cronwright(manifest, dsn, "reconcile", "--transport", "postgres", *args, env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return sorted(out.splitlines()), err


def test_a_first_reconcile_on_an_empty_ledger_owes_nothing_before_the_jobs_first_sighting(
    pg_dsn: str, tmp_path: Path
) -> None:
    """On an empty ledger (no cronwright.jobs rows) with the default catch-up (all, within
    a day), `reconcile` enqueues nothing for the past, dry or not; the real pass records
    the jobs as first seen. Three minutes later the slots that came due since, and were
    never sent, are missing, and enqueued once: every one of an `all` job, the newest of
    a `latest` job."""
    if libfaketime() is None:
        missing("libfaketime (Debian's faketime package) is not installed")
    jobs: dict[str, dict[str, Any]] = {
        "a": {"template": APPEND},
        "r": {"template": REFRESH, "catch_up": {"policy": "latest"}},
    }
    manifest = write_project(tmp_path, jobs)
    assert run(query(pg_dsn, "SELECT job FROM cronwright.jobs")) == []

    out, err = reconcile_at(manifest, pg_dsn, START, "--dry-run")
    assert (out, err) == ([], "would enqueue 0 slots on postgres\n")
    assert run(query(pg_dsn, "SELECT job FROM cronwright.jobs")) == []  # a dry run records none

    out, err = reconcile_at(manifest, pg_dsn, START)
    assert (out, err) == ([], "enqueued 0 slots on postgres\n")
    seen = run(query(pg_dsn, "SELECT job, first_seen FROM cronwright.jobs ORDER BY job"))
    assert [r["job"] for r in seen] == ["a", "r"]
    assert all(START <= r["first_seen"] < FIRST for r in seen), seen
    assert run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.queue")) == [{"n": 0}]

    later = START + 3 * MINUTE  # 10:03:30: 10:01, 10:02 and 10:03 came due since
    due = minutes_between(FIRST, later)
    owed = [("a", t) for t in due] + [("r", due[-1])]
    lines = sorted(f"{job} {t:%Y-%m-%dT%H:%M:%SZ}" for job, t in owed)

    out, err = reconcile_at(manifest, pg_dsn, later, "--dry-run")
    assert out == [f"{line} missing" for line in lines]
    assert err == f"would enqueue {len(owed)} slots on postgres\n"
    assert run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.queue")) == [{"n": 0}]

    out, err = reconcile_at(manifest, pg_dsn, later)
    assert out == [f"{line} queued" for line in lines]
    assert err == f"enqueued {len(owed)} slots on postgres\n"
    queued = run(query(pg_dsn, "SELECT job, slot, body FROM cronwright.queue"))
    assert sorted((r["job"], r["slot"]) for r in queued) == sorted(owed)
    for r in queued:
        assert json.loads(r["body"]) == {
            "type": r["job"],
            "scheduledFor": f"{r['slot']:%Y-%m-%dT%H:%M:%SZ}",
        }
    assert sources(pg_dsn) == {"reconciler"}

    out, err = reconcile_at(manifest, pg_dsn, later + timedelta(seconds=10))
    assert (out, err) == ([], "enqueued 0 slots on postgres\n")  # each slot once


# --- the reconciler's info line, printed by the real processes ---------------------------

INFO_LINE = re.compile(
    r" INFO engine\.app\.reconciler: reconciler enqueued (\d+) missing slots? of a"
    r" \(from (\S+)\) on postgres$"
)
COMMANDS = {
    "serve": ["serve", "--consumers", "1"],
    "consume": ["consume", "--transport", "postgres", "--consumers", "1"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_real_process_prints_the_reconcilers_info_line_for_the_slots_it_enqueued(
    pg_dsn: str, tmp_path: Path, command: str
) -> None:
    """A job first seen five minutes ago whose slots were never sent: the real command,
    with its own logging and default log level, prints on stderr one info line per pass
    that enqueued some of them, and the lines count exactly the slots the reconciler sent
    (each of which then ran)."""
    prepare(pg_dsn)
    manifest = write_project(tmp_path, {"a": {"template": APPEND}})
    (seen,) = run(
        query(
            pg_dsn,
            "INSERT INTO cronwright.jobs (job, first_seen)"
            " VALUES ('a', date_trunc('minute', now()) - interval '5 minutes 59 seconds')"
            " RETURNING first_seen",
        )
    )
    # Due and never sent: the six minutes from five minutes ago to this one (and, should
    # the minute turn before the first pass, the next).
    first = seen["first_seen"].replace(second=0) + MINUTE
    owed = minutes_between(first, first + 5 * MINUTE)

    def sent(*, ran: bool) -> list[datetime]:
        """The slots the reconciler sent (``ran``: that then succeeded)."""
        rows = run(
            query(
                pg_dsn,
                "SELECT d.slot FROM cronwright.dispatched AS d LEFT JOIN cronwright.runs AS r"
                " USING (job, slot) WHERE d.source = 'reconciler'"
                " AND (NOT $1 OR r.status = 'succeeded') ORDER BY d.slot",
                ran,
            )
        )
        return [r["slot"] for r in rows]

    def caught_up() -> bool:
        done = sent(ran=True)
        return len(done) >= len(owed) and done == sent(ran=False)

    proc = cronwright(manifest, pg_dsn, *COMMANDS[command])
    try:
        wait_until(lambda: caught_up() or proc.poll() is not None, "the missed slots run")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    slots = sent(ran=False)
    assert slots == sent(ran=True)  # every slot the reconciler sent ran
    assert slots[: len(owed)] == owed, slots
    assert applied(pg_dsn, "a")[: len(owed)] == owed
    found = [m for m in map(INFO_LINE.search, err.splitlines()) if m is not None]
    assert found, err
    assert sum(int(m[1]) for m in found) == len(slots), err
    first_line = (int(found[0][1]), found[0][2])
    assert first_line[0] >= len(owed) and first_line[1] == f"{first:%Y-%m-%dT%H:%M:%SZ}", err
