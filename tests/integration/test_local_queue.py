"""The local Postgres queue end to end: consumer processes killed and stopped, many
consumers at once, two schedulers, retries and paused jobs. Every check compares the
tables with what the test itself enqueued (the oracle), never with the queue's own counts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue, PgSender
from engine.app.localconsumer import LocalConsumer, LocalSettings
from engine.app.scheduler import Scheduler
from engine.core.errors import DatabaseError
from engine.core.model import Job
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.dispatch import Slot
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from engine.runtime.ports import SlotFacts
from engine.runtime.slotbook import SlotBook
from engine.runtime.slotstore import PgSlotStore
from tests.fixtures.aio import run
from tests.integration.executor_support import FakeClock, RecordingSleep
from tests.integration.localqueue_support import (
    FLAKY_TEMPLATE,
    START,
    TEMPLATE,
    enqueue,
    hourly,
    probe_job,
    query,
    setup,
    write_project,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


def consumer(dsn: str, directory: Path, *, consumers: int, lease: float, grace: float,
             sleep: float) -> subprocess.Popen[str]:  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.localqueue_support", str(directory),
         str(consumers), str(lease), str(grace), str(sleep)],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "ready\n", (line, proc.stderr.read() if proc.stderr else "")
    return proc


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=30)  # also closes the pipes


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def queue_left(dsn: str) -> int:
    return int(run(query(dsn, "SELECT count(*) AS n FROM cronwright.queue"))[0]["n"])


def leased(dsn: str) -> int:
    """Messages a consumer holds right now."""
    sql = "SELECT count(*) AS n FROM cronwright.queue WHERE lease_id IS NOT NULL"
    return int(run(query(dsn, sql))[0]["n"])


def assert_each_applied_once(dsn: str, expected: list[datetime]) -> None:
    applied = Counter(r["slot"] for r in run(query(dsn, "SELECT slot FROM probe.applied")))
    assert sorted(applied) == sorted(expected)
    assert [s for s, n in applied.items() if n != 1] == []
    ledger = run(query(dsn, "SELECT slot, status FROM cronwright.runs WHERE job = 'probe'"))
    assert sorted(r["slot"] for r in ledger) == sorted(expected)
    assert {r["status"] for r in ledger} == {"succeeded"}


def probe_executor(db: Database, manifest: Any, templates: dict[str, str], clock: FakeClock,
                   metrics: Collect | None = None) -> Executor:  # fmt: skip
    """The executor the in-process tests run: real database, injected clock, no waits."""
    return Executor(
        db=db, manifest=manifest, templates=templates, actions={},
        dead_letters=PgDeadLetters(db), metrics=metrics or Collect(), clock=clock,
        sleep=RecordingSleep(), rng=__import__("random").Random(0),
    )  # fmt: skip


def test_consumer_killed_mid_batch_then_restarted_applies_every_message_exactly_once(
    pg_dsn: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    run(setup(pg_dsn))
    slots = hourly(40)
    run(enqueue(pg_dsn, probe_job(), slots))
    procs.append(consumer(pg_dsn, tmp_path, consumers=4, lease=1.0, grace=5, sleep=0.2))

    def some_applied() -> bool:
        return bool(run(query(pg_dsn, "SELECT 1 FROM probe.applied LIMIT 8 OFFSET 7")))

    wait_until(some_applied, 60, "8 applications")
    held = leased(pg_dsn)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(30)
    assert held > 0  # it died holding messages
    assert queue_left(pg_dsn) > 0

    procs.append(consumer(pg_dsn, tmp_path, consumers=4, lease=1.0, grace=5, sleep=0.0))
    wait_until(lambda: queue_left(pg_dsn) == 0, 60, "an empty queue")
    assert_each_applied_once(pg_dsn, slots)


def test_ten_thousand_messages_with_four_consumer_processes_none_lost_none_twice(
    pg_dsn: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    run(setup(pg_dsn))
    slots = hourly(10_000)
    run(enqueue(pg_dsn, probe_job(), slots))
    for _ in range(4):
        procs.append(consumer(pg_dsn, tmp_path, consumers=2, lease=30, grace=5, sleep=0.0))
    wait_until(lambda: queue_left(pg_dsn) == 0, 300, "an empty queue")
    for p in procs:
        p.send_signal(signal.SIGTERM)
    assert [p.wait(30) for p in procs] == [0, 0, 0, 0]
    assert_each_applied_once(pg_dsn, slots)
    # Every process took part: the queue spreads work, it does not hand it all to one.
    pids = run(query(pg_dsn, "SELECT count(DISTINCT pid) AS n FROM probe.applied"))
    assert pids[0]["n"] >= 4


def test_sigterm_lets_a_running_job_finish_within_the_grace_period_and_exits_zero(
    pg_dsn: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    run(setup(pg_dsn))
    run(enqueue(pg_dsn, probe_job(), hourly(1)))
    procs.append(consumer(pg_dsn, tmp_path, consumers=1, lease=30, grace=20, sleep=1.5))
    wait_until(lambda: leased(pg_dsn) > 0, 30, "a claim")
    procs[0].send_signal(signal.SIGTERM)
    assert procs[0].wait(30) == 0
    assert queue_left(pg_dsn) == 0
    assert_each_applied_once(pg_dsn, hourly(1))


def test_sigterm_past_the_grace_period_releases_the_running_message_undone(
    pg_dsn: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    run(setup(pg_dsn))
    run(enqueue(pg_dsn, probe_job(), hourly(1)))
    procs.append(consumer(pg_dsn, tmp_path, consumers=1, lease=30, grace=0.5, sleep=30))
    wait_until(lambda: leased(pg_dsn) > 0, 30, "a claim")
    t0 = time.monotonic()
    procs[0].send_signal(signal.SIGTERM)
    assert procs[0].wait(30) == 0
    assert time.monotonic() - t0 < 10
    rows = run(
        query(
            pg_dsn,
            "SELECT attempts, lease_id, visible_at <= now() AS visible FROM cronwright.queue",
        )
    )
    # Back in the queue, visible at once, its attempt given back; nothing applied.
    assert rows == [{"attempts": 0, "lease_id": None, "visible": True}]
    assert run(query(pg_dsn, "SELECT * FROM probe.applied")) == []


async def _local(dsn: str, directory: Path, jobs: list[tuple[Job, str]], clock: FakeClock,
                 *, messages: int) -> Collect:  # fmt: skip
    manifest = write_project(
        directory, *(j for j, _ in jobs), templates={j.name: t for j, t in jobs}
    )
    metrics = Collect()
    async with Database.open(dsn, max_size=4, session_reset=False) as db:
        executor = probe_executor(db, manifest, {j.template: t for j, t in jobs}, clock, metrics)
        queue = PgQueue(db, "probe-jobs", clock=clock)
        settings = LocalSettings(consumers=1, lease_seconds=60, idle_seconds=0.05)
        await LocalConsumer(queue=queue, executor=executor, settings=settings,
                            max_messages=messages).run()  # fmt: skip
    return metrics


async def claim_at(dsn: str, now: datetime) -> list[Any]:
    async with Database.open(dsn, max_size=1) as db:
        return await PgQueue(db, "probe-jobs", clock=lambda: now).claim(10, lease_seconds=60)


def test_a_failed_run_comes_back_after_its_delay_with_one_more_attempt(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job()
    slot = START
    run(enqueue(pg_dsn, job, [slot]))
    clock = FakeClock(START + timedelta(minutes=5))
    first = run(_local(pg_dsn, tmp_path, [(job, FLAKY_TEMPLATE)], clock, messages=1))
    assert [(r.status, r.attempt) for r in first.records] == [("retry", 1)]
    rows = run(query(pg_dsn, "SELECT attempts, lease_id, visible_at FROM cronwright.queue"))
    # The job's policy: 5 s initial delay with full jitter, so visible within (now, now + 5 s].
    assert len(rows) == 1 and rows[0]["attempts"] == 1 and rows[0]["lease_id"] is None
    assert clock.now < rows[0]["visible_at"] <= clock.now + timedelta(seconds=5)
    # Not before its delay...
    assert run(claim_at(pg_dsn, rows[0]["visible_at"] - timedelta(microseconds=1))) == []
    # ...and then delivered as attempt 2, which succeeds and is acked.
    clock.now = rows[0]["visible_at"]
    second = run(_local(pg_dsn, tmp_path, [(job, FLAKY_TEMPLATE)], clock, messages=1))
    assert [(r.status, r.attempt) for r in second.records] == [("succeeded", 2)]
    assert queue_left(pg_dsn) == 0
    assert_each_applied_once(pg_dsn, [slot])


def test_a_slot_not_yet_due_is_handed_back_without_using_an_attempt(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job()
    clock = FakeClock(START - timedelta(seconds=90))  # our clock trails the slot by 90 s
    run(enqueue(pg_dsn, job, [START], at=clock.now))
    out = run(_local(pg_dsn, tmp_path, [(job, FLAKY_TEMPLATE)], clock, messages=1))
    assert [(r.status, r.error_class) for r in out.records] == [("retry", "slot_not_due")]
    rows = run(query(pg_dsn, "SELECT attempts, visible_at FROM cronwright.queue"))
    assert rows == [{"attempts": 0, "visible_at": START + timedelta(seconds=1)}]


def test_two_schedulers_at_once_enqueue_each_slot_once(pg_dsn: str, tmp_path: Path) -> None:
    hourly_job = probe_job(name="hourly")
    daily = replace(probe_job(name="daily"), cron="30 2 * * *", type="test.daily")
    manifest = write_project(tmp_path, hourly_job, daily)
    clock = FakeClock(START)

    async def both() -> None:
        async with Database.open(pg_dsn, max_size=4) as db:

            def scheduler() -> Scheduler:
                return Scheduler(db=db, store=PgSlotStore(db), manifest=manifest, sender=PgSender("probe-jobs", clock=clock),
                                 clock=clock, sleep=RecordingSleep(), environ={})  # fmt: skip

            a, b = scheduler(), scheduler()
            # Overlapping ranges, run concurrently, hour by hour like two live processes.
            for h in range(48):
                t0 = START + timedelta(hours=h)
                await asyncio.gather(a.tick(t0, t0 + timedelta(hours=1)),
                                     b.tick(t0 - timedelta(minutes=30), t0 + timedelta(hours=1)))  # fmt: skip

    run(both())
    rows = run(query(pg_dsn, "SELECT job, slot, body FROM cronwright.queue"))
    expected = {("hourly", START + timedelta(hours=h)) for h in range(49)}  # b starts at 23:30
    expected |= {("daily", START + timedelta(days=d, hours=2, minutes=30)) for d in range(2)}
    assert Counter((r["job"], r["slot"]) for r in rows) == Counter(expected)
    hour = next(r for r in rows if r["job"] == "hourly" and r["slot"] == START + timedelta(hours=1))
    assert hour["body"] == '{"type":"test.hourly","scheduledFor":"2020-01-01T01:00:00Z"}'


def test_paused_jobs_and_slots_inside_a_pause_are_neither_enqueued_nor_run(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    live = probe_job(name="live")
    paused = replace(probe_job(name="asleep", paused=True), type="test.asleep")
    manifest = write_project(tmp_path, live, paused)
    clock = FakeClock(START + timedelta(hours=6, minutes=5))
    run(query(pg_dsn, "INSERT INTO cronwright.pauses (job, paused_from, resumed_at) VALUES ('live', $1, $2) RETURNING id",
              START + timedelta(hours=2), START + timedelta(hours=4)))  # fmt: skip

    async def tick_and_consume() -> Collect:
        async with Database.open(pg_dsn, max_size=2) as db:
            s = Scheduler(db=db, store=PgSlotStore(db), manifest=manifest, sender=PgSender("probe-jobs", clock=clock),
                          clock=clock, sleep=RecordingSleep(), environ={})  # fmt: skip
            await s.tick(START, clock.now)
        return await _local(pg_dsn, tmp_path, [(live, "INSERT INTO probe.applied (slot, pid) VALUES ({{ slot }}, 0)"),
                                               (paused, "INSERT INTO probe.applied (slot, pid) VALUES ({{ slot }}, 1)")],
                            clock, messages=4)  # fmt: skip

    run(tick_and_consume())
    applied = run(query(pg_dsn, "SELECT slot, pid FROM probe.applied ORDER BY slot"))
    # live: 01:00 .. 06:00 minus the pause [02:00, 04:00); the paused job: nothing.
    assert [(r["slot"], r["pid"]) for r in applied] == [
        (START + timedelta(hours=h), 0) for h in (1, 4, 5, 6)
    ]
    assert queue_left(pg_dsn) == 0
    assert run(query(pg_dsn, "SELECT job FROM cronwright.runs WHERE job <> 'live'")) == []


class AskedStore(PgSlotStore):
    """The Postgres store, recording the (job, slot) pairs a refresh asks about."""

    asked: list[tuple[str, datetime]]

    async def open_facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> Mapping[int, SlotFacts]:
        self.asked += pairs
        return await super().open_facts(pairs, latest)


def test_the_reconcilers_book_does_not_ask_again_about_what_the_scheduler_sent(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    live, other = probe_job(name="live"), replace(probe_job(name="other"), type="test.other")
    manifest = write_project(tmp_path, live, other)
    clock = FakeClock(START + timedelta(hours=3))
    run(query(pg_dsn, "INSERT INTO cronwright.pauses (job, paused_from, resumed_at) VALUES ('live', $1, $2) RETURNING id",
              START + timedelta(hours=2), START + timedelta(hours=3)))  # fmt: skip

    async def scheduler_then_reconciler() -> tuple[list[tuple[str, datetime]], Any, Any]:
        async with Database.open(pg_dsn, max_size=2) as db:
            store = AskedStore(db)
            store.asked = []
            book = SlotBook(store, manifest.jobs, grace=timedelta(0), register=True)
            before = START - timedelta(seconds=30)  # the reconciler's first pass
            await book.refresh(before)
            s = Scheduler(db=db, store=store, manifest=manifest, sender=PgSender("probe-jobs", clock=clock),
                          clock=clock, sleep=RecordingSleep(), environ={}, book=book)  # fmt: skip
            await s.tick(before, clock.now)
            await db.fetch("DELETE FROM cronwright.dispatched WHERE job = 'other' AND slot = $1",
                           START + timedelta(hours=1))  # fmt: skip
            store.asked = []
            await book.refresh(clock.now)
            return store.asked, book.missing_by_job(), book.to_enqueue(clock.now)

    asked, missing, owed = run(scheduler_then_reconciler())
    # Sent (00:00 to 03:00) or paused (live's 02:00): closed, not asked about; nor is
    # other's 01:00, though its record went: what the book was told is not asked again.
    assert asked == []
    assert missing == {} and owed == []


def test_the_cron_flag_off_in_the_environment_stops_the_scheduler(
    pg_dsn: str, tmp_path: Path
) -> None:
    manifest = write_project(tmp_path, probe_job())

    async def tick() -> list[Slot]:
        async with Database.open(pg_dsn, max_size=1) as db:
            s = Scheduler(db=db, store=PgSlotStore(db), manifest=manifest, sender=PgSender("probe-jobs", clock=FakeClock()),
                          clock=FakeClock(), sleep=RecordingSleep(), environ={"ENABLE_CRON": "false"})  # fmt: skip
            return await s.tick(START, START + timedelta(hours=3))

    assert run(tick()) == []
    assert queue_left(pg_dsn) == 0


def test_a_consumer_whose_queue_is_gone_stops_with_the_error_instead_of_idling(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    run(query(pg_dsn, "ALTER TABLE cronwright.queue RENAME TO queue_gone"))
    with pytest.raises(DatabaseError) as err:
        run(_local(pg_dsn, tmp_path, [(probe_job(), FLAKY_TEMPLATE)], FakeClock(), messages=1))
    assert err.value.error_class == "undefined_table"


def test_messages_claimed_ahead_behind_a_long_run_go_back_for_another_consumer(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    long, short = probe_job(name="long", sleep=30), probe_job(name="short")
    shorts = hourly(3, START + timedelta(hours=1))
    run(enqueue(pg_dsn, long, [START]))  # first in line
    run(enqueue(pg_dsn, short, shorts))
    clock = FakeClock(START + timedelta(days=1))
    settings = LocalSettings(
        consumers=1, prefetch=4, heartbeat_seconds=0.3, drain_seconds=0.1, idle_seconds=0.05
    )

    async def main() -> tuple[float, list[Any], Counter[str]]:
        templates = {j.template: TEMPLATE for j in (long, short)}
        manifest = write_project(tmp_path, long, short)
        async with Database.open(pg_dsn, max_size=6, session_reset=False) as db:
            executor = probe_executor(db, manifest, templates, clock)
            queue = PgQueue(db, "probe-jobs", clock=clock)
            busy = LocalConsumer(queue=queue, executor=executor, settings=settings)
            free = LocalConsumer(queue=queue, executor=executor, settings=settings)
            tasks = [asyncio.create_task(busy.run())]
            leased = "SELECT count(*) AS n FROM cronwright.queue WHERE lease_id IS NOT NULL"
            while (await db.fetch(leased))[0]["n"] < 4:  # the long run and 3 claimed ahead
                await asyncio.sleep(0.02)
            tasks.append(asyncio.create_task(free.run()))
            t0 = time.monotonic()
            applied: list[Any] = []
            while len(applied) < 3 and time.monotonic() - t0 < 20:
                await asyncio.sleep(0.05)
                applied = await db.fetch("SELECT slot FROM probe.applied ORDER BY slot")
            elapsed = time.monotonic() - t0
            busy.stop()
            free.stop()
            await asyncio.gather(*tasks)
            return elapsed, [r["slot"] for r in applied], free.tally.statuses

    elapsed, applied, by_the_free_one = run(main())
    # The short runs went back and ran elsewhere, well before the long one's 30 s.
    assert applied == shorts
    assert by_the_free_one == Counter({"succeeded": 3})
    assert elapsed < 20


def test_a_consumer_holds_at_most_its_prefetch_claimed_ahead_besides_its_running_messages(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job(sleep=0.01)
    slots = hourly(40)
    run(enqueue(pg_dsn, job, slots))
    clock = FakeClock(START + timedelta(days=3))
    settings = LocalSettings(consumers=2, prefetch=4, idle_seconds=0.05)

    async def main() -> tuple[int, Counter[str]]:
        manifest = write_project(tmp_path, job)
        async with Database.open(pg_dsn, max_size=5, session_reset=False) as db:
            executor = probe_executor(db, manifest, {job.template: TEMPLATE}, clock)
            queue = PgQueue(db, "probe-jobs", clock=clock)
            consumer = LocalConsumer(
                queue=queue, executor=executor, settings=settings, max_messages=len(slots)
            )
            task = asyncio.create_task(consumer.run())
            most = 0
            while not task.done():
                rows = await db.fetch(
                    "SELECT count(*) AS n FROM cronwright.queue WHERE lease_id IS NOT NULL"
                )
                most = max(most, rows[0]["n"])
                await asyncio.sleep(0.005)
            return most, (await task).statuses

    most, statuses = run(main())
    assert 0 < most <= 4 + 2
    assert statuses == Counter({"succeeded": 40})
    assert_each_applied_once(pg_dsn, slots)


class CountingQueue(PgQueue):
    """The real queue, noting how many messages each claim asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[int] = []

    async def claim(self, n: int, *, lease_seconds: float) -> list[Any]:
        self.asked.append(n)
        return await super().claim(n, lease_seconds=lease_seconds)


def test_workers_that_find_nothing_claimed_wait_for_one_claim_instead_of_each_claiming_a_few(
    pg_dsn: str, tmp_path: Path
) -> None:
    """With the queue full, every claim asks for at least half the prefetch: a worker that
    queued behind another's claim takes from what it brought."""
    run(setup(pg_dsn))
    job = probe_job()
    slots = hourly(200)
    run(enqueue(pg_dsn, job, slots))
    clock = FakeClock(START + timedelta(days=30))
    settings = LocalSettings(consumers=4, prefetch=16, idle_seconds=0.05)

    async def main() -> tuple[list[int], Counter[str]]:
        manifest = write_project(tmp_path, job)
        async with Database.open(pg_dsn, max_size=7, session_reset=False) as db:
            executor = probe_executor(db, manifest, {job.template: TEMPLATE}, clock)
            queue = CountingQueue(db, "probe-jobs", clock=clock)
            consumer = LocalConsumer(
                queue=queue, executor=executor, settings=settings, max_messages=len(slots)
            )
            statuses = (await consumer.run()).statuses
            return queue.asked, statuses

    asked, statuses = run(main())
    assert statuses == Counter({"succeeded": 200})
    assert sum(asked) == 200
    full = asked[:-1]  # the last may ask for what is left of the 200
    assert min(full) >= 8, asked
    assert len(asked) <= 200 // 8 + 1
    assert_each_applied_once(pg_dsn, slots)
