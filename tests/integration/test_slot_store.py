"""The scheduling core's Postgres store: the open slots' facts (what a SlotBook's refresh
asks) agree with the full facts (what ``slots`` asks) on every kind of record, and a
refresh where every asked slot is recorded costs one statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devtools.roundtrips import counted
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.core.queries import query
from engine.runtime.ports import SlotFacts
from engine.runtime.slotstore import PgSlotStore
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SLOTS = [T0 + k * HOUR for k in range(9)]
# What is recorded about each slot of job "a", written independently of the store.
LEDGER = {0: "succeeded", 1: "failed", 2: "running", 3: "superseded", 8: "succeeded"}
DISPATCHED = {0, 4, 5}
PAUSED = {5, 6}  # a runtime pause covers 05:00 and 06:00
# Neither a ledger row nor a dispatch: 06:00 (paused), 07:00. Job "b" has no record at all.
UNRECORDED = [6, 7]


async def record(db: Database) -> None:
    async with db.transaction() as tx:
        for k, status in LEDGER.items():
            await tx.execute(
                "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
                " VALUES ('a', $1, $2, 1, $1)",
                SLOTS[k],
                status,
            )
        for k in DISPATCHED:
            await tx.execute(
                "INSERT INTO cronwright.dispatched (job, slot, source, transport)"
                " VALUES ('a', $1, 'scheduler', 'postgres')",
                SLOTS[k],
            )
        await tx.execute(
            "INSERT INTO cronwright.pauses (job, paused_from, resumed_at) VALUES ('a', $1, $2)",
            SLOTS[5],
            SLOTS[7],
        )


def test_the_open_slots_facts_are_the_full_facts_of_the_slots_with_no_record(
    pg_dsn: str,
) -> None:
    pairs = [("a", t) for t in SLOTS] + [("b", SLOTS[0])]
    latest = [k % 2 == 0 for k in range(len(pairs))]

    async def main() -> tuple[list[SlotFacts], dict[int, SlotFacts], list[str]]:
        await migrate_url(pg_dsn, None)
        async with counted(pg_dsn) as (db, trips):
            await record(db)
            store = PgSlotStore(db)
            full = await store.facts(pairs, latest)
            trips.clear()
            open_ = dict(await store.open_facts(pairs, latest))
            return full, open_, list(trips.sent)

    full, open_, sent = run(main())
    assert sorted(open_) == [*UNRECORDED, len(SLOTS)]
    assert open_ == {i: full[i] for i in open_}
    assert open_[6].paused and not open_[7].paused
    assert [q for q in sent if "unnest" in q] == [
        query("scheduling.unrecorded"),
        query("scheduling.facts"),
    ]


def test_when_every_asked_slot_is_recorded_the_open_facts_cost_one_statement(
    pg_dsn: str,
) -> None:
    recorded = [("a", SLOTS[k]) for k in sorted(set(LEDGER) | DISPATCHED)]

    async def main() -> tuple[dict[int, SlotFacts], int]:
        await migrate_url(pg_dsn, None)
        async with counted(pg_dsn) as (db, trips):
            await record(db)
            store = PgSlotStore(db)
            await store.open_facts(recorded, [True] * len(recorded))  # the types looked up
            trips.clear()
            found = dict(await store.open_facts(recorded, [True] * len(recorded)))
            return found, trips.queries

    assert run(main()) == ({}, 1)
