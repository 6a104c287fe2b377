"""The backfill's slot arithmetic and scheduling: which slots, which queue, how many at once,
and that a stop starts nothing new. The slot runner here is a recording coroutine; the
real executor is exercised in tests/integration/test_backfill.py."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from engine.app import backfill
from engine.core.model import Job, Overlap, Period, Window
from engine.runtime.outcome import Outcome
from engine.schedule.slots import between, cron_schedule
from tests.fixtures.aio import run

HOURLY = Job(
    name="h", type="t.h", cron="0 * * * *", sql="sql/h.sql", window=Window(period=Period.HOUR)
)
DAILY = Job(
    name="d", type="t.d", cron="0 2 * * *", sql="sql/d.sql", window=Window(period=Period.DAY)
)
T0 = datetime(2026, 10, 5, tzinfo=UTC)


def slots_between(job: Job, start: datetime, end: datetime) -> list[datetime]:
    return between(cron_schedule(job), start, end)


def test_slots_between_includes_the_start_and_excludes_the_end() -> None:
    assert slots_between(HOURLY, T0, T0 + timedelta(hours=3)) == [
        T0,
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    ]
    assert slots_between(HOURLY, T0 + timedelta(seconds=1), T0 + timedelta(hours=2)) == [
        T0 + timedelta(hours=1)
    ]
    assert slots_between(DAILY, T0, T0 + timedelta(days=2)) == [
        T0 + timedelta(hours=2),
        T0 + timedelta(days=1, hours=2),
    ]


class Recorder:
    """Runs a slot by sleeping a little, recording what overlapped."""

    def __init__(self) -> None:
        self.running: set[tuple[str, datetime]] = set()
        self.peak = 0
        self.overlapped_own_job = False
        self.order: list[tuple[str, datetime]] = []

    async def __call__(self, job: Job, slot: datetime) -> Outcome:
        if any(name == job.name for name, _ in self.running) and job.overlap is Overlap.FORBID:
            self.overlapped_own_job = True
        self.running.add((job.name, slot))
        self.peak = max(self.peak, len(self.running))
        self.order.append((job.name, slot))
        await asyncio.sleep(0.002)
        self.running.discard((job.name, slot))
        return Outcome(status="succeeded", job=job.name, type=job.type, slot=slot, attempt=1)


def plan(*jobs: Job, status: str = "missing", hours: int = 48) -> list[backfill.Planned]:
    out = [
        backfill.Planned(j, s, status)
        for j in jobs
        for s in slots_between(j, T0, T0 + timedelta(hours=hours))
    ]
    return sorted(out, key=lambda p: (p.slot, p.job.name))


def test_slots_of_a_job_that_forbids_overlap_queue_in_slot_order() -> None:
    jobs = [dataclasses.replace(DAILY, name=f"d{i}", type=f"t.d{i}") for i in range(6)]
    rec = Recorder()
    done = run(backfill.backfill(plan(HOURLY, *jobs), rec, concurrency=4))
    assert {d.status for d in done} == {"succeeded"}
    assert not rec.overlapped_own_job
    assert 1 < rec.peak <= 4
    hourly = [s for name, s in rec.order if name == "h"]
    assert hourly == sorted(hourly) and len(hourly) == 48


def test_slots_of_a_job_that_allows_overlap_run_side_by_side_up_to_the_bound() -> None:
    job = dataclasses.replace(HOURLY, overlap=Overlap.ALLOW)
    rec = Recorder()
    run(backfill.backfill(plan(job), rec, concurrency=3))
    assert rec.peak == 3


def test_succeeded_slots_are_skipped_unless_rerun_and_paused_ones_always() -> None:
    planned = plan(DAILY, status="succeeded") + plan(HOURLY, status="paused", hours=2)
    rec = Recorder()
    done = run(backfill.backfill(planned, rec))
    assert rec.order == []
    assert backfill.summary(done) == {"paused": 2, "skipped": 2}
    done = run(backfill.backfill(planned, rec, rerun=True))
    assert backfill.summary(done) == {"paused": 2, "succeeded": 2}


def test_a_stop_starts_no_new_slot_and_reports_the_rest_as_not_started() -> None:
    stop = asyncio.Event()
    rec = Recorder()

    async def stopping(job: Job, slot: datetime) -> Outcome:
        if len(rec.order) == 5:
            stop.set()
        return await rec(job, slot)

    done = run(backfill.backfill(plan(HOURLY), stopping, concurrency=2, stop=stop))
    assert backfill.summary(done) == {"not_started": 42, "succeeded": 6}
    ran = [d.slot for d in done if d.status == "succeeded"]
    assert ran == sorted(ran)[:6] == [T0 + timedelta(hours=h) for h in range(6)]
