"""The reconciler's pass on an in-memory store: what it enqueues, the line per job it
logs, and that the slots it sent are not asked about again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devtools.manifests import probe_manifest
from engine.app.reconciler import Reconciler
from engine.core.model import Job
from engine.runtime.dispatch import Slot
from engine.runtime.ports import Db
from engine.runtime.slotbook import SlotBook
from tests.fixtures.aio import run
from tests.fixtures.memstore import MemoryStore

T0 = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
TICK = Job(name="tick", type="t.tick", cron="* * * * *", sql="sql/tick.sql")
HOURLY = replace(TICK, name="hourly", type="t.hourly", cron="0 * * * *")


class Accepting:
    """A Sender whose every claim succeeds; it records the slots it was given."""

    transport = "postgres"
    batch = 1000

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.sent: list[Slot] = []

    async def send_batch(
        self, db: Db, slots: Sequence[Slot], *, source: str, force: bool, by: str | None
    ) -> list[Slot]:
        self.sent += slots
        return list(slots)


def test_a_pass_enqueues_the_missing_slots_logs_a_line_per_job_and_asks_about_them_no_more(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = T0 - timedelta(seconds=30)  # the slots from 15:00 on are owed
    store = MemoryStore(first={"tick": seen, "hourly": seen})
    book = SlotBook(store, [TICK, HOURLY], grace=timedelta(0), register=True)
    sender = Accepting(store)
    reconciler = Reconciler(
        None,  # type: ignore[arg-type]  (the sender claims, here in memory)
        probe_manifest(TICK, HOURLY),
        sender,
        book,
        environ={},
    )
    with caplog.at_level(logging.INFO, logger="engine.app.reconciler"):
        sent = run(reconciler.run_once(T0 + 2 * MINUTE))
    expected = [Slot(HOURLY, T0)] + [Slot(TICK, T0 + m * MINUTE) for m in range(3)]
    assert sorted(sent, key=lambda s: (s.slot, s.job.name)) == sorted(
        expected, key=lambda s: (s.slot, s.job.name)
    )
    assert [r.getMessage() for r in caplog.records] == [
        "reconciler enqueued 1 missing slot of hourly (from 2026-10-31T15:00:00Z) on postgres",
        "reconciler enqueued 3 missing slots of tick (from 2026-10-31T15:00:00Z) on postgres",
    ]
    store.asked = []
    assert run(reconciler.run_once(T0 + 3 * MINUTE)) == [Slot(TICK, T0 + 3 * MINUTE)]
    assert store.asked == [("tick", T0 + 3 * MINUTE)]
