"""analytics.aggregate-hourly on real PostgreSQL: after a run at slot T the day's rollup
equals the truth over every hour of that UTC day before T, whatever order the slots
ran in, however often, and concurrently."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.aio import run
from tests.integration import jobs_support as js

pytestmark = pytest.mark.postgres

HOURLY = js.job("aggregate-hourly")
DAY = date(2026, 10, 30)
DAY_START = datetime(2026, 10, 30)
TYPES = ("email_sent", "email_opened", "email_clicked", "page_view", "form_submitted")


def slot(hour: int) -> datetime:
    """The hourly slot ``hour`` hours after DAY's midnight (24 = next midnight)."""
    return js.utc(2026, 10, 30) + timedelta(hours=hour)


def make_events(seed: int = 3) -> list[js.Event]:
    """A day of events for a few orgs with repeat contacts, events on the hour marks,
    and events on the neighbouring days that must never leak into DAY's rows."""
    rnd = random.Random(seed)
    orgs = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(3)]
    contacts = {o: [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(25)] for o in orgs}

    def event(at: datetime) -> js.Event:
        org = rnd.choice(orgs)
        # Skewed: a few contacts produce most events, as in real activity.
        contact = contacts[org][int(25 * rnd.random() ** 2)]
        return js.Event(org, contact, rnd.choice(TYPES), None, at)

    events = [event(DAY_START + timedelta(seconds=rnd.uniform(0, 86400))) for _ in range(900)]
    events += [event(DAY_START + timedelta(hours=h)) for h in range(25)]
    events += [event(DAY_START + timedelta(hours=h, microseconds=-1)) for h in range(25)]
    events += [event(DAY_START - timedelta(seconds=rnd.uniform(1, 7200))) for _ in range(40)]
    events += [
        event(DAY_START + timedelta(days=1, seconds=rnd.uniform(0, 7200))) for _ in range(40)
    ]
    return events


EVENTS = make_events()


def truth(
    hours: set[int], events: list[js.Event] = EVENTS
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Count and distinct contacts per (org, DAY, type) over DAY's ``hours``."""
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    contacts: dict[tuple[Any, ...], set[uuid.UUID]] = defaultdict(set)
    for e in events:
        if e.created_at.date() == DAY and e.created_at.hour in hours:
            key = (e.organization_id, DAY, e.event_type)
            counts[key] += 1
            contacts[key].add(e.contact_id)
    return {k: (counts[k], len(contacts[k])) for k in counts}


def before(hour: int) -> set[int]:
    return set(range(hour))


async def rollup(dsn: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    rows = await js.fetch(
        dsn,
        "SELECT organization_id, date, event_type, count, unique_count "
        "FROM analytics.event_aggregates WHERE channel = 'hourly_rollup'",
    )
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


async def reset(dsn: str) -> None:
    conn = await js.connect(dsn)
    try:
        await conn.execute("TRUNCATE analytics.event_aggregates, analytics.event_rollup_days")
    finally:
        await conn.close()


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    run(js.seed_events(pg_dsn, EVENTS))
    return pg_dsn


def test_rollup_after_each_slot_equals_the_days_truth_before_that_slot(dsn: str) -> None:
    async def check() -> None:
        for hour in range(1, 25):
            await js.run(dsn, HOURLY, slot(hour))
            assert await rollup(dsn) == truth(before(hour)), f"after slot {hour:02d}:00"

    run(check())


def test_midnight_slot_alone_finishes_the_whole_previous_day(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(24)))
    assert run(rollup(dsn)) == truth(before(24))
    days = run(js.fetch(dsn, "SELECT date, aggregated_until FROM analytics.event_rollup_days"))
    assert [tuple(r) for r in days] == [(DAY, DAY_START + timedelta(days=1))]


def test_missed_hours_are_aggregated_by_the_next_successful_run(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(1), slot(2), slot(7)))
    assert run(rollup(dsn)) == truth(before(7))


def test_repeated_and_simultaneous_events_of_one_contact_count_it_once_per_type(
    pg_dsn: str,
) -> None:
    # Pass 2 groups the new events per (org, type, contact) by a hash of the triple and
    # probes the rolled-up part of the day once per triple: bulk inserts (one triple at
    # one created_at, several times), events exactly on the mark, the same contact under
    # another type or in another org, and repeats hours apart must all count as the truth.
    rnd = random.Random(5)
    orgs = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(2)]
    shared = uuid.UUID(int=rnd.getrandbits(128))  # one contact id seen in both orgs
    contacts = [shared, *(uuid.UUID(int=rnd.getrandbits(128)) for _ in range(6))]
    events: list[js.Event] = []
    for _ in range(120):
        at = DAY_START + timedelta(hours=rnd.randrange(24), minutes=rnd.choice((0, 0, 17, 59)))
        if rnd.random() < 0.3:
            at += timedelta(seconds=59, microseconds=999_999)
        triple = (rnd.choice(orgs), rnd.choice(contacts), rnd.choice(TYPES[:2]))
        for _ in range(rnd.choice((1, 1, 2, 4))):  # a bulk insert repeats created_at
            events.append(js.Event(triple[0], triple[1], triple[2], None, at))
    run(js.seed_events(pg_dsn, events))

    async def check() -> None:
        for hour in range(1, 25):
            await js.run(pg_dsn, HOURLY, slot(hour))
            assert await rollup(pg_dsn) == truth(before(hour), events), f"after {hour:02d}:00"

    run(check())


def test_late_run_of_an_earlier_slot_never_rolls_the_day_back(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(15)))
    after_15 = run(js.snapshot(dsn))
    run(js.run(dsn, HOURLY, slot(9)))
    assert run(js.snapshot(dsn)) == after_15
    assert run(rollup(dsn)) == truth(before(15))


def test_replayed_hour_leaves_daily_rollup_unchanged(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(10)))
    once = run(js.snapshot(dsn))
    run(js.run(dsn, HOURLY, slot(10)))
    assert run(js.snapshot(dsn)) == once
    assert run(rollup(dsn)) == truth(before(10))


def test_three_concurrent_runs_of_one_slot_count_each_event_once(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(5)))
    run(js.run_concurrently(dsn, [(HOURLY, slot(6))] * 3))
    assert run(rollup(dsn)) == truth(before(6))


def test_concurrent_runs_of_different_slots_add_up_to_the_truth(dsn: str) -> None:
    run(js.run_concurrently(dsn, [(HOURLY, slot(8)), (HOURLY, slot(3)), (HOURLY, slot(12))]))
    assert run(rollup(dsn)) == truth(before(12))


def test_slots_in_any_order_and_repeated_leave_identical_tables(dsn: str) -> None:
    hours = list(range(1, 25))
    run(js.run(dsn, HOURLY, *map(slot, hours)))
    in_order = run(js.snapshot(dsn))
    run(reset(dsn))
    shuffled = hours * 2
    random.Random(11).shuffle(shuffled)
    run(js.run(dsn, HOURLY, *map(slot, shuffled)))
    assert run(js.snapshot(dsn)) == in_order
    assert run(rollup(dsn)) == truth(before(24))


def test_next_days_runs_leave_the_finished_day_alone(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(24)))
    finished = run(rollup(dsn))
    run(js.run(dsn, HOURLY, slot(25), slot(26)))
    after = run(rollup(dsn))
    assert {k: v for k, v in after.items() if k[1] == DAY} == finished
    next_day = {k for k in after if k[1] != DAY}
    assert next_day and {k[1] for k in next_day} == {date(2026, 10, 31)}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.integers(min_value=1, max_value=24), min_size=1, max_size=8))
def test_any_sequence_of_slots_leaves_the_truth_before_the_latest(
    dsn: str, hours: list[int]
) -> None:
    async def check() -> None:
        await reset(dsn)
        latest = 0
        for hour in hours:
            await js.run(dsn, HOURLY, slot(hour))
            latest = max(latest, hour)
            assert await rollup(dsn) == truth(before(latest)), f"after {hours}"

    run(check())


def test_a_missed_midnight_run_is_caught_up_by_the_next_days_first_run(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(20)))
    run(js.run(dsn, HOURLY, slot(25)))  # 01:00 the next day; the 00:00 run never came
    days = run(rollup(dsn))
    assert {k: v for k, v in days.items() if k[1] == DAY} == truth(before(24))
    marks = run(js.fetch(dsn, "SELECT date, aggregated_until FROM analytics.event_rollup_days"))
    assert sorted(tuple(r) for r in marks) == [
        (DAY, DAY_START + timedelta(days=1)),
        (DAY + timedelta(days=1), DAY_START + timedelta(days=1, hours=1)),
    ]


def test_a_first_run_never_backfills_the_previous_day_from_scratch(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(25)))
    assert [k for k in run(rollup(dsn)) if k[1] == DAY] == []


def day_truth(day: date, events: list[js.Event] = EVENTS) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Count and distinct contacts per (org, day, type) over the whole of ``day``."""
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    contacts: dict[tuple[Any, ...], set[uuid.UUID]] = defaultdict(set)
    for e in events:
        if e.created_at.date() == day:
            key = (e.organization_id, day, e.event_type)
            counts[key] += 1
            contacts[key].add(e.contact_id)
    return {k: (counts[k], len(contacts[k])) for k in counts}


def test_an_outage_longer_than_a_day_is_caught_up_by_the_next_successful_run(dsn: str) -> None:
    run(js.run(dsn, HOURLY, slot(20)))
    run(js.run(dsn, HOURLY, slot(49)))  # 01:00 two days on: every slot between was missed
    days = run(rollup(dsn))
    next_day = DAY + timedelta(days=1)
    assert {k: v for k, v in days.items() if k[1] == DAY} == day_truth(DAY)
    assert {k: v for k, v in days.items() if k[1] == next_day} == day_truth(next_day)
    marks = run(js.fetch(dsn, "SELECT date, aggregated_until FROM analytics.event_rollup_days"))
    assert sorted(tuple(r) for r in marks) == [
        (DAY, DAY_START + timedelta(days=1)),
        (next_day, DAY_START + timedelta(days=2)),
        (DAY + timedelta(days=2), DAY_START + timedelta(days=2, hours=1)),
    ]


def _reads_of(plan: dict[str, Any], alias: str) -> list[tuple[str, str | None, int]]:
    """(node type, index, heap fetches) of every plan node that reads ``alias``."""
    found = []
    if plan.get("Alias") == alias:
        found.append((plan["Node Type"], plan.get("Index Name"), plan.get("Heap Fetches", -1)))
    for child in plan.get("Plans", []):
        found += _reads_of(child, alias)
    return found


def test_counted_already_probe_reads_only_the_days_triple_index(dsn: str) -> None:
    # Every probe must be answered from contact_activity_day_triple_idx alone
    # (sql/migrations/0005): a plan that reads the event's heap row per probe, or probes a
    # wider index, counts the same and costs several times as much at 10M events a day
    # (bench/hourly.py --events 10000000). The table is vacuumed and analyzed first, as a
    # production table's autovacuum leaves it.
    async def probe_reads() -> list[tuple[str, str | None, int]]:
        conn = await js.connect(dsn)
        try:
            # The server commits asynchronously (devtools/pgserver.py), and VACUUM marks a
            # page all-visible only once its rows' commit is flushed: a checkpoint does that.
            await conn.execute("CHECKPOINT")
            await conn.execute("VACUUM ANALYZE analytics.contact_activity")
            await js.run_in(conn, HOURLY, slot(6))
            tx = conn.transaction()
            await tx.start()
            try:
                *setup, main = js.statements(HOURLY, slot(7))
                for st in setup:
                    await conn.execute(st.sql, *st.args)
                plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + main.sql, *main.args)
                return _reads_of(json.loads(plan)[0]["Plan"], "p")
            finally:
                await tx.rollback()
        finally:
            await conn.close()

    assert run(probe_reads()) == [("Index Only Scan", "contact_activity_day_triple_idx", 0)]
