"""The scheduling core's book (engine.runtime.scheduling.SlotBook) is incremental: a
refresh asks about the slots that came due since the last one and the open ones, a whole
cohort of jobs at once when it can. Whatever the jobs (crons shared or not, zones,
history starts, catch-up windows and policies), whatever gets recorded between refreshes
(by others, or by a local scheduler that tells the book what it sent as it comes due)
and however far apart they are, each refresh must leave the book as a computation from
scratch has it: every job's missing slots, and what catch-up enqueues."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.model import CatchUp, CatchUpPolicy, Job, Period, Window
from engine.runtime.scheduling import history_start, status_of
from engine.runtime.slotbook import SlotBook
from engine.schedule.slots import between, cron_schedule
from tests.fixtures.aio import run
from tests.fixtures.memstore import MemoryStore

T0 = datetime(2026, 10, 25, 0, 30, 20, tzinfo=UTC)  # Paris leaves summer time at 01:00 UTC
TICK = timedelta(microseconds=1)
BASE = Job(
    name="j", type="t.j", cron="* * * * *", sql="sql/j.sql", window=Window(period=Period.HOUR)
)
CRONS = ["* * * * *", "*/2 * * * *", "*/5 * * * *", "0 * * * *", "7,8 * * * *", "59 23 * * *"]


@st.composite
def jobs(draw: st.DrawFn) -> list[Job]:
    out = []
    for i in range(draw(st.integers(1, 7))):
        since = draw(st.sampled_from([None, None, T0 - timedelta(minutes=17)]))
        out.append(
            replace(
                BASE,
                name=f"j{i}",
                type=f"t.j{i}",
                cron=draw(st.sampled_from(CRONS)),
                timezone=draw(st.sampled_from([None, None, "Europe/Paris"])),
                paused=draw(st.booleans()) and draw(st.booleans()),
                catch_up=CatchUp(
                    policy=draw(st.sampled_from(list(CatchUpPolicy))),
                    within_seconds=draw(st.sampled_from([120, 600, 3600, 86400])),
                    since=since,
                ),
            )
        )
    return out


# Between refreshes: minutes to wait, the jobs a local scheduler sends the slots of as
# they come due meanwhile (telling the book), and what gets recorded after the refresh
# (each missing slot of a job dispatched, run, or left alone, by a draw per job).
steps = st.lists(
    st.tuples(
        st.integers(0, 45),
        st.integers(0, 59),
        st.lists(st.booleans(), max_size=7),
        st.lists(st.sampled_from(["none", "dispatched", "succeeded", "failed"]), max_size=7),
    ),
    min_size=1,
    max_size=6,
)


def expected(
    store: MemoryStore, js: list[Job], first: dict[str, datetime], now: datetime, grace: timedelta
) -> tuple[dict[str, list[datetime]], list[tuple[str, datetime]]]:
    """Every job's missing slots and what catch-up enqueues, from scratch."""
    missing: dict[str, list[datetime]] = {}
    enqueue: list[tuple[str, datetime]] = []
    due = now - grace
    for job in js:
        start = history_start(job, first.get(job.name))
        if start is None:
            continue
        window = timedelta(seconds=job.catch_up.within_seconds)
        lower = max(start, now - window)
        slots = between(cron_schedule(job), lower, now + TICK)
        facts = run(store.facts([(job.name, t) for t in slots], [True] * len(slots)))
        statuses = [
            status_of(job, t, f, start, now=now, grace=grace)
            for t, f in zip(slots, facts, strict=True)
        ]
        mine = [t for t, s in zip(slots, statuses, strict=True) if s == "missing"]
        if mine:
            missing[job.name] = mine
        policy = job.catch_up.policy
        if job.paused or policy is CatchUpPolicy.NONE:
            continue
        if policy is CatchUpPolicy.ALL:
            enqueue += [(job.name, t) for t in mine]
            continue
        past = [(t, s) for t, s in zip(slots, statuses, strict=True) if t <= due]
        past = [(t, s) for t, s in past if s != "not_deployed"]
        if past and past[-1][1] == "missing":
            enqueue.append((job.name, past[-1][0]))
    return missing, sorted(enqueue, key=lambda p: (p[1], p[0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs(), steps, st.sampled_from([0, 600]))
def test_each_refresh_leaves_the_book_as_a_computation_from_scratch_has_it(
    js: list[Job], plan: list[tuple[int, int, list[bool], list[str]]], grace_seconds: int
) -> None:
    grace = timedelta(seconds=grace_seconds)
    store = MemoryStore()
    book = SlotBook(store, js, grace=grace, register=True)
    now = T0
    for minutes, seconds, scheduled, records in plan:
        before, now = now, now + timedelta(minutes=minutes, seconds=seconds)
        sent = [
            (job, t)
            for job, on in zip(js, scheduled, strict=False)
            if on and not job.paused
            for t in between(cron_schedule(job), before + TICK, now + TICK)
        ]
        store.dispatched |= {(job.name, t) for job, t in sent}
        run(book.closed(sent))
        run(book.refresh(now))
        missing, enqueue = expected(store, js, store.first, now, grace)
        assert book.missing_by_job() == missing
        got = [(job.name, t) for job, t in book.to_enqueue(now)]
        # `latest` remembers its newest slot past the grace period after it leaves the
        # catch-up window; from scratch only what is in the window is known.
        assert [p for p in got if p in enqueue or not _latest(js, p[0])] == [p for p in enqueue]
        # Whatever it remembers, `latest` never enqueues a slot older than one recorded.
        recorded = store.dispatched | set(store.ledger)
        older = [(n, t) for n, t in got if any(m == n and u > t for m, u in recorded)]
        assert not [(n, t) for n, t in older if _latest(js, n)]
        for job, what in zip(js, records, strict=False):
            for t in missing.get(job.name, []):
                if what == "dispatched":
                    store.dispatched.add((job.name, t))
                elif what != "none":
                    store.ledger[(job.name, t)] = what


def _latest(js: list[Job], name: str) -> bool:
    return next(j for j in js if j.name == name).catch_up.policy is CatchUpPolicy.LATEST
