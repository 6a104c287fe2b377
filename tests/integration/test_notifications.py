"""Notifications and healthcheck pings as an operator meets them: real `serve` processes
on an accelerated clock, a local HTTP receiver standing in for Slack (Apprise's
`json://`) and for Healthchecks.io. Every check reads what the receiver got."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from devtools.simclock import SimClock
from engine.core.times import iso
from tests.fixtures.aio import run
from tests.fixtures.receiver import Received, receiving
from tests.integration.localqueue_support import query
from tests.integration.service_support import (
    APPEND,
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
SERVICE: dict[str, Any] = {
    "scheduler": True,
    "consumers": 2,
    "reconcile_seconds": 1.0,
    "lease_seconds": 600,
    "heartbeat_seconds": 1.0,
    "drain_seconds": 2.0,
    "prune_seconds": None,
    "notify_seconds": 0.2,  # real seconds
    "notify_first_delay_seconds": 1,
}
SECRET = "hook-s3cret-0123456789"
# Fails (division by zero: permanent, a dead letter at once) while probe.healthy is empty.
SWITCHED = """
SELECT 1 / (SELECT count(*)::integer FROM probe.healthy);
INSERT INTO probe.applied (job, slot) VALUES ({{ job.name }}, {{ slot }});
"""


def setup(dsn: str) -> None:
    async def go() -> None:
        from engine.adapters.pg import Database

        async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
            await tx.script(SETUP_SQL + "CREATE TABLE probe.healthy (ok boolean);")

    run(go())


def sql(dsn: str, statement: str, *args: object) -> list[dict[str, Any]]:
    return run(query(dsn, statement, *args))


def service(tmp_path: Path, dsn: str, jobs: dict[str, dict[str, Any]], **env: str) -> Service:
    manifest = write_project(tmp_path, jobs)
    clock = SimClock(START, SPEED, tmp_path / "wall0")
    return Service(manifest=manifest, dsn=dsn, clock=clock, options=dict(SERVICE), env=env)


def by_type(posts: list[Received], kind: str) -> list[dict[str, Any]]:
    return [p.json for p in posts if p.json["type"] == kind]


def test_a_dead_letter_is_posted_once_with_its_job_slot_and_reason_by_two_serve_processes(
    pg_dsn: str, tmp_path: Path
) -> None:
    setup(pg_dsn)
    with receiving() as receiver:
        hook = receiver.url("/hook/${HOOK_SECRET}")
        jobs = {"flaky": {"template": SWITCHED, "notify": [{"url": hook}]}}
        svc = service(tmp_path, pg_dsn, jobs, HOOK_SECRET=SECRET)
        with running(svc):
            svc.start()
            svc.start()
            svc.clock.go()
            wait_until(
                lambda: (
                    sql(pg_dsn, "SELECT count(*) AS n FROM cronwright.dead_letters")[0]["n"] >= 2
                ),
                "two dead letters",
            )
            sql(pg_dsn, "INSERT INTO probe.healthy VALUES (true) RETURNING ok")
            wait_until(lambda: by_type(receiver.delivered(), "success"), "the recovery", timeout=60)
            letters = sql(pg_dsn, "SELECT id, slot, reason FROM cronwright.dead_letters")
            wait_until(
                lambda: len(by_type(receiver.delivered(), "failure")) >= len(letters),
                "a POST per dead letter",
            )
            time.sleep(2)  # ten passes of each notifier: time for a second POST to show
            codes = svc.stop_all()
    assert [c for c, _ in codes] == [0, 0], codes
    posts = receiver.delivered()
    assert {p.path for p in posts} == {f"/hook/{SECRET}"}
    failures = by_type(posts, "failure")
    assert len(failures) == len(letters)
    for letter in letters:
        slot = iso(letter["slot"])
        about = [f for f in failures if f"slot {slot}" in f["message"]]
        assert len(about) == 1, (slot, failures)
        assert about[0]["title"] == f"[probe] flaky: dead letter for slot {slot}"
        assert about[0]["message"] == (
            f"flaky, slot {slot}: dead-lettered after 1 attempt.\n"
            f"Reason: {letter['reason']} (data_exception)\n"
            "Look closer: cronwright dead-letters list --job flaky\n"
            f"Run it again once fixed: cronwright dead-letters replay {letter['id']} --run"
        )
    assert len(by_type(posts, "success")) == 1
    assert by_type(posts, "warning") == []
    for _, err in codes:
        assert SECRET not in err


def lateness(dsn: str, job: str, wall0: float) -> list[float]:
    """How late each of the job's slots was applied, in real seconds after it came due on
    the accelerated clock."""
    rows = sql(
        dsn, "SELECT slot, extract(epoch FROM at) AS at FROM probe.applied WHERE job = $1", job
    )
    due = [wall0 + (r["slot"] - START).total_seconds() / SPEED for r in rows]
    return [float(r["at"]) - d for r, d in zip(rows, due, strict=True)]


def run_phase(
    tmp_path: Path,
    dsn: str,
    suffix: str,
    notify: list[dict[str, Any]] | None,
    slots: int,
    busy: Callable[[], bool] = lambda: True,
    then: Callable[[], None] = lambda: None,
) -> tuple[list[float], list[tuple[int, str]]]:
    """A serve with an always-failing job (told to ``notify``) beside a steady one; the
    steady job's lateness over its slots until it has ``slots`` and ``busy`` is true.
    ``then`` runs before the stop."""
    steady, flaky = f"steady-{suffix}", f"flaky-{suffix}"
    jobs: dict[str, dict[str, Any]] = {
        steady: {"template": APPEND, "notify": []},
        flaky: {"template": SWITCHED},
    }
    if notify is not None:
        jobs[flaky]["notify"] = notify
    (tmp_path / suffix).mkdir()
    svc = service(tmp_path / suffix, dsn, jobs, HOOK_SECRET=SECRET)
    with running(svc):
        svc.start()
        svc.clock.go()
        wait_until(
            lambda: (
                len(sql(dsn, "SELECT 1 FROM probe.applied WHERE job = $1", steady)) >= slots
                and busy()
            ),
            f"{slots} slots of {steady}",
        )
        late = lateness(dsn, steady, float((tmp_path / suffix / "wall0").read_text()))
        then()
        codes = svc.stop_all()
    sql(dsn, "DELETE FROM cronwright.queue RETURNING id")
    return late, codes


def test_a_failing_receiver_gets_the_notification_once_it_is_back_and_runs_are_not_slowed(
    pg_dsn: str, tmp_path: Path
) -> None:
    """The receiver answers its first six requests with a 500, each after 2 s; the steady
    job beside the dead-lettering one runs as late as in a run with no notify at all,
    through the whole time the receiver is failing."""
    setup(pg_dsn)
    baseline, _ = run_phase(tmp_path, pg_dsn, "quiet", None, 20)
    letters: list[dict[str, Any]] = []

    def until_delivered() -> None:
        sql(pg_dsn, "INSERT INTO probe.healthy VALUES (true) RETURNING ok")  # no more letters
        time.sleep(1)
        letters[:] = sql(
            pg_dsn, "SELECT slot FROM cronwright.dead_letters WHERE job = 'flaky-told'"
        )
        wait_until(lambda: len(receiver.delivered()) >= len(letters), "every letter delivered")
        time.sleep(1)

    with receiving(failures=6, delay=2.0) as receiver:
        hook = [{"url": receiver.url("/hook/${HOOK_SECRET}"), "events": ["dead_letter"]}]
        notified, codes = run_phase(
            tmp_path,
            pg_dsn,
            "told",
            hook,
            12,
            lambda: len(receiver.delivered()) >= 1,  # the six failures are behind it
            until_delivered,
        )
    assert [c for c, _ in codes] == [0], codes
    # Tried while down, then delivered: once per dead letter of the told job.
    assert [r.status for r in receiver.all()][:6] == [500] * 6
    told = [p.json["message"] for p in receiver.delivered()]
    for letter in letters:
        assert len([m for m in told if f"slot {iso(letter['slot'])}:" in m]) == 1, letter
    assert len(told) == len(letters)
    retried = sql(pg_dsn, "SELECT max(tries) AS n FROM cronwright.notifications")
    assert retried[0]["n"] >= 2
    # Not slowed: within a quarter second of the quiet run's, in the median and at the
    # 90th percentile (sending in the event loop would add the receiver's 2 s a try).
    assert median(notified) < median(baseline) + 0.25, (baseline, notified)
    ninety = sorted(notified)[int(len(notified) * 0.9)]
    assert ninety < sorted(baseline)[int(len(baseline) * 0.9)] + 0.25, (baseline, notified)
    assert SECRET not in codes[0][1]


def test_slots_missed_while_the_service_was_stopped_are_told_once_then_the_recovery(
    pg_dsn: str, tmp_path: Path
) -> None:
    setup(pg_dsn)
    with receiving() as receiver:
        hook = {"url": receiver.url("/ops"), "events": ["missing", "recovery"]}
        svc = service(tmp_path, pg_dsn, {"a": {"template": APPEND, "notify": [hook]}})
        with running(svc):
            first_process = svc.start()
            svc.clock.go()
            wait_until(lambda: len(sql(pg_dsn, "SELECT 1 FROM probe.applied")) >= 2, "two slots")
            first_process.send_signal(signal.SIGTERM)
            first_process.wait(30)
            stopped_after = max(r["slot"] for r in sql(pg_dsn, "SELECT slot FROM probe.applied"))
            time.sleep(4)  # four simulated minutes with no service at all
            svc.start()
            wait_until(lambda: by_type(receiver.delivered(), "success"), "the recovery")
            time.sleep(2)
            codes = svc.stop_all()
    assert [c for c, _ in codes] == [0, 0], codes
    posts = receiver.delivered()
    assert [p.json["type"] for p in posts] == ["warning", "success"]
    missing, recovered = posts[0].json, posts[1].json
    first = stopped_after + MINUTE
    assert missing["title"].startswith("[probe] a: ") and missing["title"].endswith(
        f"missing from {iso(first)}"
    )
    n = int(missing["title"].split(": ")[1].split(" ")[0])
    assert n >= 3  # four minutes down, the newest slot still within its minute
    last = first + (n - 1) * MINUTE
    assert missing["message"] == (
        f"a: {n} due slots ({iso(first)} to {iso(last)}) were neither sent nor run, past the"
        " grace of 0 s.\n"
        "Reason: nothing sent them: was cronwright (or the Worker) stopped, or its cron flag"
        " off? The reconciler catches up by the job's catch_up policy (all).\n"
        f"Look closer: cronwright slots a --from {iso(first)} --to {iso(last + MINUTE)}"
    )
    assert recovered["title"].startswith("[probe] a: recovered, slot ")
    slot = datetime.strptime(recovered["title"].split("slot ")[1], "%Y-%m-%dT%H:%M:%SZ succeeded")
    assert slot.replace(tzinfo=UTC) >= last
    assert recovered["message"].endswith(
        f"after missing slots from slot {iso(first)} on.\n"
        "Look closer: cronwright runs --job a --history"
    )
    # Every slot of the gap ran once the service was back.
    applied = [r["slot"] for r in sql(pg_dsn, "SELECT slot FROM probe.applied")]
    assert all(first + i * MINUTE in applied for i in range(n))


def test_a_run_past_80_percent_of_its_timeout_is_told_near_timeout(
    pg_dsn: str, tmp_path: Path
) -> None:
    setup(pg_dsn)
    slow = "SELECT pg_sleep(1.7);\n" + APPEND
    with receiving() as receiver:
        hook = {"url": receiver.url("/ops"), "events": ["near_timeout"]}
        jobs = {
            "slow": {
                "template": slow,
                "cron": "*/5 * * * *",
                "timeout_seconds": 2,
                "notify": [hook],
            },
            "quick": {
                "template": APPEND,
                "cron": "*/5 * * * *",
                "timeout_seconds": 2,
                "notify": [hook],
            },
        }
        svc = service(tmp_path, pg_dsn, jobs)
        with running(svc):
            svc.start()
            svc.clock.go()
            wait_until(lambda: receiver.delivered(), "a near-timeout notification")
            wait_until(
                lambda: len(sql(pg_dsn, "SELECT 1 FROM probe.applied WHERE job = 'quick'")) >= 2,
                "two quick runs",
            )
            time.sleep(1)
            codes = svc.stop_all()
    assert [c for c, _ in codes] == [0], codes
    runs = sql(
        pg_dsn,
        "SELECT run_id, slot, duration_ms FROM cronwright.run_history WHERE job = 'slow'"
        " ORDER BY run_id",
    )
    posts = [p.json for p in receiver.delivered()]
    assert all(p["type"] == "warning" for p in posts)
    first, run_ = posts[0], runs[0]
    took = run_["duration_ms"] / 1000
    assert 1.6 < took < 2.0
    slot = iso(run_["slot"])
    assert first["title"] == f"[probe] slow: slot {slot} took {took:.1f} s of its 2 s timeout"
    assert first["message"] == (
        f"slow, slot {slot}: attempt 1 succeeded after {took:.1f} s, {took / 2 * 100:.0f}% of"
        " its timeout_seconds (2).\n"
        "Reason: above 80% of the timeout a run is near it; a slower one is stopped there"
        " and retried.\n"
        "Look closer: cronwright runs --job slow --history"
    )
    assert not any("quick" in p["title"] for p in posts)
    assert len(posts) <= len(runs)


def test_healthcheck_pings_arrive_in_order_start_then_fail_or_success(
    pg_dsn: str, tmp_path: Path
) -> None:
    setup(pg_dsn)
    with receiving() as receiver:
        check = f"http://127.0.0.1:{receiver.port}/ping/${{HC_UUID}}"
        svc = service(
            tmp_path,
            pg_dsn,
            {"checked": {"template": SWITCHED, "healthcheck": check}},
            HC_UUID=SECRET,
        )
        with running(svc):
            svc.start()
            svc.clock.go()
            wait_until(lambda: any(r.path.endswith("/fail") for r in receiver.all()), "a /fail")
            sql(pg_dsn, "INSERT INTO probe.healthy VALUES (true) RETURNING ok")
            wait_until(
                lambda: any(r.path == f"/ping/{SECRET}" for r in receiver.all()), "a success"
            )
            time.sleep(1)
            codes = svc.stop_all()
            time.sleep(0.5)
    assert [c for c, _ in codes] == [0], codes
    pings = receiver.all()
    assert {r.method for r in pings} == {"POST"}
    by_slot: dict[str, list[str]] = {}
    for r in pings:
        slot = r.body.split("slot ")[1].split(",")[0]
        by_slot.setdefault(slot, []).append(r.path.removeprefix(f"/ping/{SECRET}") or "/")
    outcomes = [paths for paths in by_slot.values() if len(paths) == 2]
    assert outcomes and all(p in (["/start", "/fail"], ["/start", "/"]) for p in outcomes), by_slot
    assert ["/start", "/fail"] in outcomes and ["/start", "/"] in outcomes
    # At most one slot was still running when the service stopped: only its /start came.
    assert all(len(paths) in (1, 2) for paths in by_slot.values())
    assert sum(len(paths) == 1 for paths in by_slot.values()) <= 1
    fail = next(r for r in pings if r.path.endswith("/fail"))
    slot = fail.body.split("slot ")[1].split(",")[0]
    assert fail.body == (
        f"cronwright: checked, slot {slot}, attempt 1: dead-lettered: permanent error:"
        " data_exception (22012): division by zero (data_exception)"
    )
    success = next(r for r in pings if r.path == f"/ping/{SECRET}")
    slot = success.body.split("slot ")[1].split(",")[0]
    assert success.body == f"cronwright: checked, slot {slot}, attempt 1: succeeded"
    # In order as sent: each slot's /start before its outcome, and slots in order.
    starts = [r.body.split("slot ")[1].split(",")[0] for r in pings if r.path.endswith("/start")]
    assert starts == sorted(starts)
    assert SECRET not in codes[0][1]
