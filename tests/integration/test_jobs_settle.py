"""analytics.aggregate-hourly's settled days, reruns and bounded catch-up on real
PostgreSQL, checked against a plain-Python oracle over the same event rows."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from engine.core.model import Job
from engine.sql import sqltemplates
from tests.fixtures.aio import run
from tests.integration import jobs_support as js

pytestmark = pytest.mark.postgres

HOURLY = js.job("aggregate-hourly")
DAY = date(2026, 10, 30)
DAY_START = datetime(2026, 10, 30)
TYPES = ("email_sent", "email_opened", "email_clicked", "page_view", "form_submitted")
Rollup = dict[tuple[Any, ...], tuple[int, int]]


def slot(hour: int) -> datetime:
    """The hourly slot ``hour`` hours after DAY's midnight."""
    return js.utc(2026, 10, 30) + timedelta(hours=hour)


class Source:
    """A few orgs with repeat contacts; events spread over ``days`` days from DAY."""

    def __init__(self, seed: int, days: int = 2, per_day: int = 400) -> None:
        self.rnd = random.Random(seed)
        self.orgs = [uuid.UUID(int=self.rnd.getrandbits(128)) for _ in range(3)]
        self.contacts = {
            o: [uuid.UUID(int=self.rnd.getrandbits(128)) for _ in range(20)] for o in self.orgs
        }
        self.events = [
            self.event(DAY_START + timedelta(days=d, seconds=self.rnd.uniform(0, 86400)))
            for d in range(days)
            for _ in range(per_day)
        ]

    def event(self, at: datetime, org: uuid.UUID | None = None) -> js.Event:
        org = org or self.rnd.choice(self.orgs)
        contact = self.contacts[org][int(20 * self.rnd.random() ** 2)]
        return js.Event(org, contact, self.rnd.choice(TYPES), None, at)


def oracle(events: list[js.Event], day: date, until: datetime | None = None) -> Rollup:
    """Count and distinct contacts per (org, day, type) over [day 00:00, until)."""
    start = datetime.combine(day, datetime.min.time())
    end = until or start + timedelta(days=1)
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    contacts: dict[tuple[Any, ...], set[uuid.UUID]] = defaultdict(set)
    for e in events:
        if start <= e.created_at < end:
            key = (e.organization_id, day, e.event_type)
            counts[key] += 1
            contacts[key].add(e.contact_id)
    return {k: (counts[k], len(contacts[k])) for k in counts}


async def rollup(dsn: str, day: date | None = None) -> Rollup:
    rows = await js.fetch(
        dsn,
        "SELECT organization_id, date, event_type, count, unique_count "
        "FROM analytics.event_aggregates WHERE channel = 'hourly_rollup' "
        "AND ($1::date IS NULL OR date = $1)",
        day,
    )
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


async def days(dsn: str) -> dict[date, tuple[datetime, bool]]:
    rows = await js.fetch(
        dsn, "SELECT date, aggregated_until, settled FROM analytics.event_rollup_days"
    )
    return {r[0]: (r[1], r[2]) for r in rows}


async def run_job(dsn: str, job: Job, at: datetime, *, rerun: bool = False) -> None:
    """One run in one transaction, as the executor does it (less its ledger), under the
    job's statement timeout."""
    source = (js.ROOT / job.template).read_text()
    stmts = sqltemplates.split_statements(sqltemplates.render(job, source, at, rerun=rerun))
    conn = await js.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = '{job.timeout_seconds}s'")
            for st in stmts:
                await conn.execute(st.sql, *st.args, timeout=js.TIMEOUT)
    finally:
        await conn.close(timeout=js.TIMEOUT)


async def reruns_concurrently(dsn: str, job: Job, at: datetime, n: int) -> None:
    """``n`` reruns of one slot, each in its own transaction, all begun before any runs."""
    import asyncio

    source = (js.ROOT / job.template).read_text()
    stmts = sqltemplates.split_statements(sqltemplates.render(job, source, at, rerun=True))
    conns = [await js.connect(dsn) for _ in range(n)]
    begun = asyncio.Barrier(n)

    async def one(conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("SELECT 1")
            await begun.wait()
            for st in stmts:
                await conn.execute(st.sql, *st.args, timeout=js.TIMEOUT)

    try:
        await asyncio.gather(*(one(c) for c in conns))
    finally:
        for c in conns:
            await c.close(timeout=js.TIMEOUT)


def with_window(job: Job, **changes: Any) -> Job:
    return dataclasses.replace(job, window=dataclasses.replace(job.window, **changes))


def with_budget(job: Job, days: int) -> Job:
    return dataclasses.replace(job, params=MappingProxyType({**job.params, "catch_up_days": days}))


async def delete_events(dsn: str, where: str, *args: Any) -> None:
    conn = await js.connect(dsn)
    try:
        await conn.execute(f"DELETE FROM analytics.contact_activity WHERE {where}", *args)
    finally:
        await conn.close(timeout=js.TIMEOUT)


# -- settling ---------------------------------------------------------------------------


def test_late_event_is_counted_by_the_settling_run_and_not_before(pg_dsn: str) -> None:
    src = Source(seed=1)
    run(js.seed_events(pg_dsn, src.events))
    known = list(src.events)

    async def scenario() -> None:
        for hour in range(1, 13):
            await run_job(pg_dsn, HOURLY, slot(hour))
        # Committed after the 06:00 run covered 05:00-06:00: a long transaction, say.
        # One falls in an existing group, one opens a group nobody had yet.
        late = [
            src.event(DAY_START + timedelta(hours=5, minutes=30)),
            js.Event(src.orgs[0], uuid.uuid4(), "sms_sent", None, DAY_START + timedelta(hours=5)),
        ]
        await js.seed_events(pg_dsn, late)
        for hour in range(13, 25):
            await run_job(pg_dsn, HOURLY, slot(hour))
            # Before settlement: the day so far as each run promised it, late events not in.
            assert await rollup(pg_dsn, DAY) == oracle(known, DAY, slot(hour).replace(tzinfo=None))
        assert (await days(pg_dsn))[DAY] == (DAY_START + timedelta(days=1), False)
        await run_job(pg_dsn, HOURLY, slot(25))  # 01:00: D+1 00:00 + settle_seconds 3600
        assert await rollup(pg_dsn, DAY) == oracle(known + late, DAY)
        assert (await days(pg_dsn))[DAY] == (DAY_START + timedelta(days=1), True)

    run(scenario())


def test_settling_waits_for_settle_seconds_and_is_done_by_the_first_run_after(
    pg_dsn: str,
) -> None:
    src = Source(seed=2)
    run(js.seed_events(pg_dsn, src.events))
    job = with_window(HOURLY, settle_seconds=7200)
    late = [src.event(DAY_START + timedelta(hours=22))]

    async def scenario() -> None:
        await run_job(pg_dsn, job, slot(24))
        await js.seed_events(pg_dsn, late)
        await run_job(pg_dsn, job, slot(25))  # 01:00: before 00:00 + 7200 s
        assert await rollup(pg_dsn, DAY) == oracle(src.events, DAY)
        # The 02:00 run never came; the 03:00 run is the first at or after 02:00.
        await run_job(pg_dsn, job, slot(27))
        assert await rollup(pg_dsn, DAY) == oracle(src.events + late, DAY)
        assert (await days(pg_dsn))[DAY][1] is True

    run(scenario())


def test_settled_day_is_replaced_not_added_to_and_replaying_the_settling_run_changes_nothing(
    pg_dsn: str,
) -> None:
    src = Source(seed=3)
    run(js.seed_events(pg_dsn, src.events))
    run(run_job(pg_dsn, HOURLY, slot(24)))
    run(run_job(pg_dsn, HOURLY, slot(25)))
    settled = run(js.snapshot(pg_dsn))
    assert run(rollup(pg_dsn, DAY)) == oracle(src.events, DAY)
    run(run_job(pg_dsn, HOURLY, slot(25)))
    run(run_job(pg_dsn, HOURLY, slot(26)))
    after = run(js.snapshot(pg_dsn))
    assert [r for r in after["analytics.event_aggregates"] if r[1] == DAY] == [
        r for r in settled["analytics.event_aggregates"] if r[1] == DAY
    ]


def test_settle_seconds_zero_settles_the_day_in_its_midnight_run(pg_dsn: str) -> None:
    src = Source(seed=4)
    run(js.seed_events(pg_dsn, src.events))
    job = with_window(HOURLY, settle_seconds=0)
    late = [src.event(DAY_START + timedelta(hours=3))]
    run(run_job(pg_dsn, job, slot(12)))
    run(js.seed_events(pg_dsn, late))
    run(run_job(pg_dsn, job, slot(24)))
    assert run(rollup(pg_dsn, DAY)) == oracle(src.events + late, DAY)
    assert run(days(pg_dsn))[DAY] == (DAY_START + timedelta(days=1), True)


# -- reruns -----------------------------------------------------------------------------


async def change_the_finished_day(dsn: str, src: Source) -> list[js.Event]:
    """Delete one org's page views and every form submission of DAY, add new events
    (one in a group that did not exist); return the source as it now stands."""
    org = src.orgs[1]
    await delete_events(
        dsn,
        "(organization_id = $1 AND event_type = 'page_view') OR event_type = 'form_submitted'",
        org,
    )
    added = [src.event(DAY_START + timedelta(hours=h, minutes=7)) for h in (2, 9, 23)]
    added.append(js.Event(org, uuid.uuid4(), "webinar_joined", None, DAY_START))
    await js.seed_events(dsn, added)
    return [
        e
        for e in src.events
        if not (
            (e.organization_id == org and e.event_type == "page_view")
            or e.event_type == "form_submitted"
        )
    ] + added


def test_rerun_of_a_finished_days_midnight_slot_recomputes_it_from_the_source(
    pg_dsn: str,
) -> None:
    src = Source(seed=5)
    run(js.seed_events(pg_dsn, src.events))
    for hour in range(1, 27):
        run(run_job(pg_dsn, HOURLY, slot(hour)))  # DAY finished and settled
    now = run(change_the_finished_day(pg_dsn, src))
    next_day = run(rollup(pg_dsn, DAY + timedelta(days=1)))

    run(run_job(pg_dsn, HOURLY, slot(24), rerun=True))
    assert run(rollup(pg_dsn, DAY)) == oracle(now, DAY)
    assert run(rollup(pg_dsn, DAY + timedelta(days=1))) == next_day  # other days untouched
    once = run(js.snapshot(pg_dsn))

    run(run_job(pg_dsn, HOURLY, slot(24), rerun=True))  # replayed: nothing changes
    assert run(js.snapshot(pg_dsn)) == once

    run(reruns_concurrently(pg_dsn, HOURLY, slot(24), 3))  # concurrent: as one
    assert run(js.snapshot(pg_dsn)) == once


def test_concurrent_reruns_after_a_change_leave_the_result_of_one(pg_dsn: str) -> None:
    src = Source(seed=6)
    run(js.seed_events(pg_dsn, src.events))
    run(run_job(pg_dsn, HOURLY, slot(24)))
    now = run(change_the_finished_day(pg_dsn, src))
    run(reruns_concurrently(pg_dsn, HOURLY, slot(24), 3))
    assert run(rollup(pg_dsn, DAY)) == oracle(now, DAY)


def test_rerun_of_an_earlier_slot_never_rolls_the_day_back(pg_dsn: str) -> None:
    src = Source(seed=7)
    run(js.seed_events(pg_dsn, src.events))
    run(run_job(pg_dsn, HOURLY, slot(15)))
    run(run_job(pg_dsn, HOURLY, slot(9), rerun=True))
    assert run(rollup(pg_dsn, DAY)) == oracle(src.events, DAY, slot(15).replace(tzinfo=None))
    # A rerun of a slot beyond the mark recomputes up to that slot.
    run(run_job(pg_dsn, HOURLY, slot(20), rerun=True))
    assert run(rollup(pg_dsn, DAY)) == oracle(src.events, DAY, slot(20).replace(tzinfo=None))
    assert run(days(pg_dsn))[DAY] == (DAY_START + timedelta(hours=20), False)


# -- bounded catch-up -------------------------------------------------------------------


def test_a_ten_day_gap_heals_a_bounded_number_of_days_per_run(pg_dsn: str) -> None:
    src = Source(seed=8, days=12, per_day=150)
    run(js.seed_events(pg_dsn, src.events))
    budget = 2
    job = dataclasses.replace(with_budget(HOURLY, budget), timeout_seconds=10)
    all_days = [DAY + timedelta(days=d) for d in range(12)]

    async def consistent() -> dict[date, tuple[datetime, bool]]:
        """Every day with a mark holds exactly its events before the mark: never half-added."""
        marks = await days(pg_dsn)
        for day, (until, _) in marks.items():
            assert await rollup(pg_dsn, day) == oracle(src.events, day, until), day
        return marks

    async def scenario() -> None:
        await run_job(pg_dsn, job, slot(20))
        # Ten days of outage; service is back at day 11 01:00.
        pending_before = None
        hour = 11 * 24 + 1
        runs = 0
        while True:
            before = await consistent()
            await run_job(pg_dsn, job, slot(hour))
            after = await consistent()
            untouched = {d: (datetime.combine(d, datetime.min.time()), False) for d in after}
            recomputed = [
                d
                for d in after
                if d < DAY + timedelta(days=11) and after[d] != before.get(d, untouched[d])
            ]
            pending = [
                d
                for d, (_, settled) in after.items()
                if d < DAY + timedelta(days=11) and not settled
            ]
            assert len(recomputed) <= budget, (hour, recomputed)
            if pending_before is not None:
                assert pending_before == [] or len(pending) < len(pending_before), hour
            pending_before = pending
            runs += 1
            hour += 1
            if not pending:
                break
        # 11 days (DAY unfinished, the 10 swallowed) at 2 a run: 6 runs.
        assert runs == 6
        for day in all_days[:11]:
            assert await rollup(pg_dsn, day) == oracle(src.events, day), day
        assert await rollup(pg_dsn, all_days[11]) == oracle(
            src.events, all_days[11], slot(hour - 1).replace(tzinfo=None)
        )

    run(scenario(), timeout=300)


def test_days_caught_up_together_are_each_replaced_with_their_own_groups(pg_dsn: str) -> None:
    src = Source(seed=9, days=3)
    run(js.seed_events(pg_dsn, src.events))
    org = src.orgs[2]
    run(run_job(pg_dsn, HOURLY, slot(20)))  # DAY has (org, page_view) rows
    # Gone from DAY only; the next day still has that group.
    run(
        delete_events(
            pg_dsn,
            "organization_id = $1 AND event_type = 'page_view' AND created_at < $2",
            org,
            DAY_START + timedelta(days=1),
        )
    )
    now = [
        e
        for e in src.events
        if not (
            e.organization_id == org
            and e.event_type == "page_view"
            and e.created_at < DAY_START + timedelta(days=1)
        )
    ]
    run(run_job(pg_dsn, HOURLY, slot(53)))  # both DAY and the next day are pending
    assert run(rollup(pg_dsn, DAY)) == oracle(now, DAY)
    next_day = DAY + timedelta(days=1)
    assert run(rollup(pg_dsn, next_day)) == oracle(now, next_day)
    assert (org, next_day, "page_view") in run(rollup(pg_dsn, next_day))


def _scans_of(plan: Any, relation: str) -> list[int]:
    """``Actual Loops`` of every plan node that reads ``relation``."""
    found = [plan["Actual Loops"]] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += _scans_of(child, relation)
    return found


def test_catch_up_statements_never_read_the_events_when_no_day_is_flagged(pg_dsn: str) -> None:
    # Every run renders catch_up_days re-aggregation statements, and almost every run has
    # no day to catch up: those statements must not read contact_activity at all (the
    # planner, not knowing the day in advance, would otherwise scan the whole table).
    source = Source(seed=5, days=1)
    run(js.seed_events(pg_dsn, source.events))
    run(js.run(pg_dsn, HOURLY, slot(1), slot(2)))

    async def loops() -> list[int]:
        conn = await js.connect(pg_dsn)
        tx = conn.transaction()
        await tx.start()
        try:
            found: list[int] = []
            for st in js.statements(HOURLY, slot(3)):
                if "fresh AS (" not in st.sql:
                    await conn.execute(st.sql, *st.args)
                    continue
                plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + st.sql, *st.args)
                found += _scans_of(json.loads(plan)[0]["Plan"], "contact_activity")
            return found
        finally:
            await tx.rollback()
            await conn.close()

    found = run(loops())
    assert found, "the re-aggregation statements no longer read contact_activity"
    assert set(found) == {0}
