"""A dispatch goes in batches of its sender's size (Cloudflare 100: one sendBatch call;
the Postgres queue 1000), each claimed and enqueued in a transaction of its own, oldest
first. A failure part-way leaves the batches before it dispatched, so the next pass sends
the rest, each slot once. The oracle is the list of slots the test asked for; the sender
here is the Postgres one with Cloudflare's batch size."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from engine.adapters.cfqueue import MAX_BATCH
from engine.adapters.cfsender import CloudflareSender
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgSender
from engine.core.errors import JobFailed
from engine.core.times import iso
from engine.runtime.dispatch import Slot, dispatch
from engine.runtime.ports import Tx
from tests.fixtures.aio import run
from tests.integration.localqueue_support import START, probe_job

pytestmark = pytest.mark.postgres

JOB = probe_job()
SLOTS = [Slot(JOB, START + timedelta(hours=i)) for i in range(250)]


class Watching:
    """The Postgres sender, noting at each call its batch's size and how many messages
    other connections can already see (committed by the batches before)."""

    transport = "postgres"
    batch = MAX_BATCH

    def __init__(self, db: Database, *, fail_on_call: int | None = None) -> None:
        self._db = db
        self._inner = PgSender("probe-jobs", clock=lambda: START)
        self._fail_on_call = fail_on_call
        self.calls: list[tuple[int, int]] = []

    async def send(self, tx: Tx, slots: Sequence[Slot]) -> None:
        visible = await self._db.fetch("SELECT count(*) AS n FROM cronwright.queue")
        self.calls.append((len(slots), visible[0]["n"]))
        if len(self.calls) == self._fail_on_call:
            raise JobFailed("the queue is away", transient=True, error_class="test")
        await self._inner.send(tx, slots)


async def queued_slots(db: Database) -> list[str]:
    rows = await db.fetch("SELECT body::json->>'scheduledFor' AS slot FROM cronwright.queue")
    return sorted(r["slot"] for r in rows)


def test_a_catch_up_is_enqueued_a_batch_per_transaction_oldest_first(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[list[tuple[int, int]], list[Slot], list[str]]:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn, max_size=3) as db:
            sender = Watching(db)
            sent = await dispatch(db, sender, list(reversed(SLOTS)), source="scheduler")
            return sender.calls, sent, await queued_slots(db)

    calls, sent, queued = run(main())
    assert (MAX_BATCH, CloudflareSender.batch, PgSender.batch) == (100, 100, 1000)
    assert calls == [(100, 0), (100, 100), (50, 200)]
    assert sent == SLOTS
    assert queued == sorted(iso(s.slot) for s in SLOTS)


def test_a_failure_part_way_keeps_the_batches_before_it_and_the_next_pass_sends_the_rest_once(
    pg_dsn: str,
) -> None:
    async def main() -> tuple[list[str], list[Slot], list[str]]:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn, max_size=3) as db:
            with pytest.raises(JobFailed, match="the queue is away"):
                await dispatch(db, Watching(db, fail_on_call=2), SLOTS, source="scheduler")
            after_failure = await queued_slots(db)
            sent = await dispatch(db, Watching(db), SLOTS, source="scheduler")
            return after_failure, sent, await queued_slots(db)

    after_failure, sent, queued = run(main())
    assert after_failure == sorted(iso(s.slot) for s in SLOTS[:100])
    assert sent == SLOTS[100:]
    assert queued == sorted(iso(s.slot) for s in SLOTS)  # each slot once
