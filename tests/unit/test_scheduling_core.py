"""The scheduling core's rules, on an in-memory store: a slot's status, history starts,
grace, the catch-up policies, and what a refresh costs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.core.model import CatchUp, CatchUpPolicy, Job, Period, Window
from engine.runtime.ports import JobFacts, SlotFacts
from engine.runtime.scheduling import (
    STATUSES,
    grace_for,
    overview,
    slots_by_job,
    status_of,
    statuses,
)
from engine.runtime.slotbook import SlotBook
from engine.schedule.slots import Schedule, cron_schedule
from tests.fixtures.aio import run
from tests.fixtures.memstore import MemoryStore

T0 = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVERY_MINUTE = Job(
    name="tick",
    type="t.tick",
    cron="* * * * *",
    sql="sql/tick.sql",
    window=Window(period=Period.HOUR),
)
LATEST = replace(
    EVERY_MINUTE, name="refresh", type="t.refresh", catch_up=CatchUp(policy=CatchUpPolicy.LATEST)
)
NONE = replace(
    EVERY_MINUTE, name="quiet", type="t.quiet", catch_up=CatchUp(policy=CatchUpPolicy.NONE)
)


def minutes(n: int) -> timedelta:
    return n * MINUTE


# (what, job, facts, history start, slot, grace, expected): each rule, in its order.
STATUS_RULES = [
    (
        "the ledger's row wins",
        EVERY_MINUTE,
        SlotFacts(ledger="failed", dispatched=True, paused=True),
        T0,
        T0,
        0,
        "failed",
    ),
    ("a ledger row of superseded", LATEST, SlotFacts(ledger="superseded"), T0, T0, 0, "superseded"),
    ("a runtime pause", EVERY_MINUTE, SlotFacts(paused=True, dispatched=True), T0, T0, 0, "paused"),
    ("a manifest pause", replace(EVERY_MINUTE, paused=True), SlotFacts(), T0, T0, 0, "paused"),
    ("sent by cronwright", EVERY_MINUTE, SlotFacts(dispatched=True), T0, T0, 0, "queued"),
    (
        "before the history starts, even for latest",
        LATEST,
        SlotFacts(newer_active=True),
        T0,
        T0 - MINUTE,
        0,
        "not_deployed",
    ),
    ("a latest job's older slot", LATEST, SlotFacts(newer_active=True), T0, T0, 0, "superseded"),
    (
        "newer activity means nothing to an `all` job",
        EVERY_MINUTE,
        SlotFacts(newer_active=True),
        T0,
        T0,
        0,
        "missing",
    ),
    ("before the history starts", EVERY_MINUTE, SlotFacts(), T0, T0 - MINUTE, 0, "not_deployed"),
    ("a job never seen", EVERY_MINUTE, SlotFacts(), None, T0, 0, "not_deployed"),
    ("inside the grace period", EVERY_MINUTE, SlotFacts(), T0, T0 + minutes(9), 600, "pending"),
    ("just past the grace period", EVERY_MINUTE, SlotFacts(), T0, T0 + minutes(5), 600, "missing"),
    (
        "no grace on the postgres transport",
        EVERY_MINUTE,
        SlotFacts(),
        T0,
        T0 + minutes(15),
        0,
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("what", "job", "facts", "start", "slot", "grace", "expected"),
    STATUS_RULES,
    ids=[r[0] for r in STATUS_RULES],
)
def test_each_rule_of_a_slots_status_applies_in_its_order(
    what: str,
    job: Job,
    facts: SlotFacts,
    start: datetime | None,
    slot: datetime,
    grace: int,
    expected: str,
) -> None:
    now = T0 + minutes(15)
    assert status_of(job, slot, facts, start, now=now, grace=timedelta(seconds=grace)) == expected
    assert expected in STATUSES


def test_only_the_cloudflare_worker_gets_a_grace_period() -> None:
    assert grace_for("cloudflare") == timedelta(seconds=600)
    assert grace_for("postgres") == timedelta(0)


def book(store: MemoryStore, *jobs: Job, grace: int = 0, register: bool = True) -> SlotBook:
    return SlotBook(store, jobs, grace=timedelta(seconds=grace), register=register)


def test_a_first_start_owes_nothing_from_before_the_job_was_first_seen() -> None:
    store = MemoryStore()
    b = book(store, EVERY_MINUTE)
    run(b.refresh(T0 + timedelta(seconds=30)))
    assert store.first[EVERY_MINUTE.name] == T0 + timedelta(seconds=30)
    assert b.to_enqueue(T0 + timedelta(seconds=30)) == []
    # Three minutes later nothing ran: those three are owed, and only those.
    run(b.refresh(T0 + minutes(3)))
    assert b.to_enqueue(T0 + minutes(3)) == [(EVERY_MINUTE, T0 + minutes(m)) for m in (1, 2, 3)]


def test_a_job_seen_long_ago_is_owed_its_catch_up_window_only() -> None:
    store = MemoryStore(first={"tick": T0 - timedelta(days=30)})
    job = replace(EVERY_MINUTE, catch_up=CatchUp(within_seconds=600))
    b = book(store, job)
    run(b.refresh(T0))
    assert b.to_enqueue(T0) == [(job, T0 - minutes(m)) for m in range(10, -1, -1)]


def test_catch_up_since_starts_the_history_before_the_first_sighting() -> None:
    since = T0 - minutes(5)
    job = replace(EVERY_MINUTE, catch_up=CatchUp(since=since))
    store = MemoryStore()
    b = book(store, job)
    run(b.refresh(T0))
    assert [t for _, t in b.to_enqueue(T0)] == [T0 - minutes(m) for m in range(5, -1, -1)]


def test_all_enqueues_every_missing_slot_and_skips_what_is_recorded() -> None:
    store = MemoryStore(first={"tick": T0})
    store.ledger[("tick", T0 + minutes(1))] = "succeeded"
    store.ledger[("tick", T0 + minutes(2))] = "dead_lettered"
    store.dispatched.add(("tick", T0 + minutes(3)))
    store.pauses["tick"] = [(T0 + minutes(4), T0 + minutes(5))]
    b = book(store, EVERY_MINUTE)
    run(b.refresh(T0 + minutes(6)))
    assert [t for _, t in b.to_enqueue(T0 + minutes(6))] == [T0, T0 + minutes(5), T0 + minutes(6)]
    assert b.missing(EVERY_MINUTE) == [T0, T0 + minutes(5), T0 + minutes(6)]


def test_latest_enqueues_only_the_newest_due_slot() -> None:
    store = MemoryStore(first={"refresh": T0})
    b = book(store, LATEST)
    run(b.refresh(T0 + minutes(4)))
    assert b.to_enqueue(T0 + minutes(4)) == [(LATEST, T0 + minutes(4))]


@pytest.mark.parametrize("newer", ["succeeded", "failed", "dead_lettered", "queued"])
def test_latest_never_enqueues_a_slot_older_than_one_sent_or_run(newer: str) -> None:
    # 15:00-15:04 are missing; 15:06 (past the grace period's edge or not) was sent or ran.
    store = MemoryStore(first={"refresh": T0})
    if newer == "queued":
        store.dispatched.add(("refresh", T0 + minutes(6)))
    else:
        store.ledger[("refresh", T0 + minutes(6))] = newer
    b = book(store, LATEST, grace=120)
    run(b.refresh(T0 + minutes(7)))
    assert b.to_enqueue(T0 + minutes(7)) == []
    assert b.missing(LATEST) == []


def test_latest_ignores_newer_slots_that_were_only_paused_or_superseded() -> None:
    store = MemoryStore(first={"refresh": T0})
    store.ledger[("refresh", T0 + minutes(3))] = "paused"
    b = book(store, LATEST)
    run(b.refresh(T0 + minutes(2)))
    assert b.to_enqueue(T0 + minutes(2)) == [(LATEST, T0 + minutes(2))]


def test_grace_leaves_the_newest_slots_pending_and_owes_the_older_ones() -> None:
    store = MemoryStore(first={"tick": T0})
    b = book(store, EVERY_MINUTE, grace=120)
    run(b.refresh(T0 + minutes(5)))
    assert [t for _, t in b.to_enqueue(T0 + minutes(5))] == [T0 + minutes(m) for m in range(4)]


def test_none_enqueues_nothing_but_its_missing_slots_still_count() -> None:
    store = MemoryStore(first={"quiet": T0})
    b = book(store, NONE)
    run(b.refresh(T0 + minutes(2)))
    assert b.to_enqueue(T0 + minutes(2)) == []
    assert b.missing(NONE) == [T0, T0 + minutes(1), T0 + minutes(2)]


def test_a_manifest_paused_job_owes_nothing() -> None:
    job = replace(EVERY_MINUTE, paused=True)
    b = book(MemoryStore(first={"tick": T0}), job)
    run(b.refresh(T0 + minutes(2)))
    assert b.to_enqueue(T0 + minutes(2)) == []
    assert b.missing(job) == []


def test_a_reader_that_does_not_register_sees_an_unseen_job_owe_nothing() -> None:
    store = MemoryStore()
    b = book(store, EVERY_MINUTE, register=False)
    run(b.refresh(T0))
    assert store.first == {}
    assert b.to_enqueue(T0) == []


def test_the_slots_statuses_and_their_jobs_facts_are_one_question() -> None:
    store = MemoryStore(
        first={"tick": T0},
        ledger={("tick", T0): "succeeded"},
        dispatched={("tick", T0 + MINUTE)},
        pauses={"refresh": [(T0, T0 + MINUTE), (T0 + minutes(3), None)]},
    )
    four = [T0 + minutes(m) for m in range(4)]
    wanted = [(EVERY_MINUTE, four), (LATEST, four), (NONE, [])]
    now, grace = T0 + minutes(4), minutes(2)
    seen = run(overview(store, wanted, now=now, grace=grace))
    assert store.questions == 1
    assert [s.status for s in seen.statuses] == [
        *("succeeded", "queued", "missing", "pending"),
        *("paused", "not_deployed", "not_deployed", "paused"),  # never seen, paused twice
    ]
    assert seen.jobs == {
        "tick": JobFacts(first_seen=T0),
        "refresh": JobFacts(paused_since=T0 + minutes(3)),  # the open pause
        "quiet": JobFacts(),  # asked though it has no slot in the range
    }
    # The same answer as from the facts alone, the history starts given.
    assert run(statuses(store, wanted, now=now, grace=grace)) == seen.statuses
    assert run(statuses(store, wanted, now=now, grace=grace, first_seen=store.first)) == (
        seen.statuses
    )


def test_a_refresh_asks_about_the_new_and_the_open_slots_only_in_one_question() -> None:
    store = MemoryStore()
    jobs = [replace(EVERY_MINUTE, name=f"j{i}", type=f"t.j{i}") for i in range(50)]
    for job in jobs:
        store.first[job.name] = T0
    b = book(store, *jobs)
    run(b.refresh(T0 + minutes(10)))
    for job in jobs:  # every slot until 15:09 ran since
        for m in range(10):
            store.ledger[(job.name, T0 + minutes(m))] = "succeeded"
    run(b.refresh(T0 + minutes(11)))
    asked, store.asked = store.questions, []
    run(b.refresh(T0 + minutes(12)))
    assert store.questions == asked + 1
    # 15:10 and 15:11 (missing: open) and 15:12 (new) of each job, nothing older again.
    assert sorted(store.asked) == sorted(
        (job.name, T0 + minutes(m)) for job in jobs for m in (10, 11, 12)
    )
    assert b.missing(jobs[0]) == [T0 + minutes(m) for m in (10, 11, 12)]


def test_a_slot_missing_at_one_refresh_and_run_by_the_next_is_no_longer_owed() -> None:
    store = MemoryStore(first={"tick": T0})
    b = book(store, EVERY_MINUTE)
    run(b.refresh(T0 + minutes(1)))
    assert b.missing(EVERY_MINUTE) == [T0, T0 + minutes(1)]
    store.dispatched.add(("tick", T0))
    store.ledger[("tick", T0 + minutes(1))] = "succeeded"
    run(b.refresh(T0 + minutes(1)))
    assert b.missing(EVERY_MINUTE) == []


def test_jobs_that_share_a_schedule_share_one_listing_of_its_slots() -> None:
    twins = [replace(EVERY_MINUTE, name=f"j{i}", type=f"t.j{i}") for i in range(3)]
    listed = slots_by_job(twins, T0, T0 + minutes(3))
    assert [slots for _, slots in listed] == [[T0, T0 + MINUTE, T0 + minutes(2)]] * 3
    assert listed[0][1] is listed[1][1] is listed[2][1]


HOURLY = replace(EVERY_MINUTE, name="hourly", type="t.hourly", cron="0 * * * *")


def test_a_refresh_asks_only_about_the_jobs_whose_schedule_came_due() -> None:
    store = MemoryStore(first={"tick": T0, "hourly": T0})
    b = book(store, EVERY_MINUTE, HOURLY)
    store.dispatched |= {("tick", T0), ("hourly", T0)}
    run(b.refresh(T0))
    store.asked = []
    for m in range(1, 60):  # the minutes before 16:00: the hourly job is not due
        store.dispatched.add(("tick", T0 + minutes(m)))
        run(b.refresh(T0 + minutes(m)))
    assert store.asked == [("tick", T0 + minutes(m)) for m in range(1, 60)]
    store.asked = []
    run(b.refresh(T0 + minutes(60)))
    assert sorted(store.asked) == [("hourly", T0 + minutes(60)), ("tick", T0 + minutes(60))]
    assert b.missing_by_job() == {"hourly": [T0 + minutes(60)], "tick": [T0 + minutes(60)]}


def test_a_slot_a_dispatch_was_given_is_closed_and_not_asked_about_again() -> None:
    store = MemoryStore(first={"tick": T0})
    b = book(store, EVERY_MINUTE)
    run(b.refresh(T0 + minutes(2)))
    assert b.to_enqueue(T0 + minutes(2)) == [(EVERY_MINUTE, T0 + minutes(m)) for m in range(3)]
    run(b.closed([(EVERY_MINUTE, T0), (EVERY_MINUTE, T0 + minutes(1))]))
    assert b.missing(EVERY_MINUTE) == [T0 + minutes(2)]
    store.asked = []
    run(b.refresh(T0 + minutes(3)))
    assert store.asked == [("tick", T0 + minutes(2)), ("tick", T0 + minutes(3))]


def test_latest_does_not_enqueue_its_newest_slot_again_once_a_dispatch_was_given_it() -> None:
    store = MemoryStore(first={"refresh": T0})
    b = book(store, LATEST)
    run(b.refresh(T0 + minutes(4)))
    assert b.to_enqueue(T0 + minutes(4)) == [(LATEST, T0 + minutes(4))]
    run(b.closed([(LATEST, T0 + minutes(4))]))
    assert b.to_enqueue(T0 + minutes(4)) == []


def test_a_refresh_does_not_ask_about_the_slots_the_local_scheduler_sent_as_they_came_due() -> None:
    twins = [replace(EVERY_MINUTE, name=f"j{i}", type=f"t.j{i}") for i in range(3)]
    store = MemoryStore(first={job.name: T0 for job in twins})
    store.dispatched |= {(job.name, T0) for job in twins}
    b = book(store, *twins)
    run(b.refresh(T0))
    sent = [(job, T0 + minutes(m)) for m in (1, 2, 3) for job in twins]
    sent.remove((twins[2], T0 + minutes(2)))  # one the scheduler did not get to
    store.dispatched |= {(job.name, t) for job, t in sent}
    run(b.closed(sent))
    store.asked = []
    run(b.refresh(T0 + minutes(3)))
    # 15:02 is asked about for the whole cohort (one of it was not sent), nothing else.
    assert sorted(store.asked) == [(job.name, T0 + minutes(2)) for job in twins]
    assert b.missing_by_job() == {"j2": [T0 + minutes(2)]}
    assert b._ahead == {}  # what a refresh has passed is forgotten: the book stays small


def test_a_refresh_lists_no_slot_of_the_cohorts_the_local_scheduler_sent_whole() -> None:
    twins = [replace(EVERY_MINUTE, name=f"j{i}", type=f"t.j{i}") for i in range(3)]
    hourly = replace(EVERY_MINUTE, name="hourly", type="t.hourly", cron="0 * * * *")
    store = MemoryStore(first={job.name: T0 for job in [*twins, hourly]})
    store.dispatched |= {(job.name, T0) for job in [*twins, hourly]}
    listed: list[tuple[str, datetime]] = []

    def schedule_for(job: Job) -> Schedule:
        schedule = cron_schedule(job)

        class Listing:
            def matches(self, t: datetime) -> bool:
                return schedule.matches(t)

            def next_after(self, t: datetime) -> datetime | None:
                listed.append((job.cron, t))
                return schedule.next_after(t)

        return Listing()

    b = SlotBook(
        store, [*twins, hourly], grace=MINUTE * 0, register=True, schedule_for=schedule_for
    )
    run(b.refresh(T0))
    sent = [(job, T0 + minutes(m)) for m in (1, 2, 3) for job in twins]
    store.dispatched |= {(job.name, t) for job, t in sent}
    run(b.closed(sent))
    listed.clear()
    store.asked = []
    run(b.refresh(T0 + minutes(3) + timedelta(seconds=30)))
    # The scheduler's sends moved the twins' cohort past 15:03 as they were told; the
    # hourly job's cohort is not due: the refresh lists and asks nothing.
    assert listed == []
    assert store.asked == []
    assert b.missing_by_job() == {}
    run(
        b.refresh(T0 + minutes(4) + timedelta(seconds=30))
    )  # 15:04 was not sent: listed, asked, missing
    assert sorted(store.asked) == [(job.name, T0 + minutes(4)) for job in twins]
    assert b.missing_by_job() == {job.name: [T0 + minutes(4)] for job in twins}
