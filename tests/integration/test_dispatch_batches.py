"""A dispatch goes in batches of its sender's size (Cloudflare 100: one sendBatch call;
the Postgres queue 1000), each claimed and sent in a transaction of its own, oldest
first. A failure part-way leaves the batches before it dispatched, so the next pass sends
the rest, each slot once. The oracle is the list of slots the test asked for; the sender
here is a remote one with Cloudflare's batch size (claim, send, commit) whose remote
queue is the local one, written on a connection of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from devtools.roundtrips import counted
from engine.adapters.cfqueue import MAX_BATCH
from engine.adapters.cfsender import CloudflareSender
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue, PgSender, body_json
from engine.core.errors import JobFailed
from engine.core.queries import query
from engine.core.times import iso
from engine.runtime.dispatch import Slot, claim_then_send, dispatch
from engine.runtime.ports import Db
from tests.fixtures.aio import run
from tests.integration.localqueue_support import START, probe_job

pytestmark = pytest.mark.postgres

JOB = probe_job()
SLOTS = [Slot(JOB, START + timedelta(hours=i)) for i in range(250)]


class Watching:
    """A remote sender, noting at each send its batch's size and how many messages are
    already queued (sent by the batches before)."""

    transport = "cloudflare"
    batch = MAX_BATCH

    def __init__(self, db: Database, *, fail_on_call: int | None = None) -> None:
        self._db = db
        self._fail_on_call = fail_on_call
        self.calls: list[tuple[int, int]] = []

    async def send_batch(
        self, db: Db, slots: Sequence[Slot], *, source: str, force: bool, by: str | None
    ) -> list[Slot]:
        return await claim_then_send(
            db,
            slots,
            source=source,
            transport=self.transport,
            force=force,
            by=by,
            send=self._send,
        )

    async def _send(self, slots: Sequence[Slot]) -> None:
        visible = await self._db.fetch("SELECT count(*) AS n FROM cronwright.queue")
        self.calls.append((len(slots), visible[0]["n"]))
        if len(self.calls) == self._fail_on_call:
            raise JobFailed("the queue is away", transient=True, error_class="test")
        await PgQueue(self._db, "probe-jobs").put_raw([body_json(s) for s in slots])


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


# --- the Postgres sender: claim, pause filter and queue rows in one statement ---------

MINUTE = timedelta(minutes=1)


async def pause(db: Database, job: str, start: datetime, end: datetime | None) -> None:
    await db.fetch(
        "INSERT INTO cronwright.pauses (job, paused_from, resumed_at) VALUES ($1, $2, $3)"
        " RETURNING id",
        job,
        start,
        end,
    )


def test_the_postgres_sender_sends_each_batch_of_a_thousand_in_one_statement_skipping_paused_and_sent_slots(
    pg_dsn: str,
) -> None:
    jobs = [replace(JOB, name=f"j{i:04d}", type=f"t.j{i:04d}") for i in range(600)]
    slots = [Slot(job, START + k * MINUTE) for k in range(2) for job in jobs]  # 1,200
    # Independently of the implementation: j0000-j0009 were sent before by someone else,
    # and j0010's minute 1 falls inside a pause, j0011's every slot inside an open one.
    sent_before = slots[:10]
    expected = [
        s
        for s in slots
        if s not in sent_before
        and not (s.job.name == "j0010" and s.slot == START + MINUTE)
        and s.job.name != "j0011"
    ]

    async def main() -> tuple[list[Slot], list[str], list[str]]:
        await migrate_url(pg_dsn, None)
        async with counted(pg_dsn) as (db, trips):
            sender = PgSender("probe-jobs", clock=lambda: START)
            await dispatch(db, sender, sent_before, source="reconciler")
            await pause(db, "j0010", START + MINUTE, START + 2 * MINUTE)
            await pause(db, "j0011", START - MINUTE, None)
            trips.clear()
            sent = await dispatch(db, sender, slots, source="scheduler")
            statements = list(trips.sent)
            rows = await db.fetch("SELECT body FROM cronwright.queue ORDER BY id")
        return sent, statements, [r["body"] for r in rows]

    sent, statements, bodies = run(main())
    assert sent == sorted(expected, key=lambda s: (s.slot, s.job.name))
    assert statements == [query("dispatch.claim")] * 2  # 1,000 then 190: a statement each
    assert bodies == [body_json(s) for s in sent_before] + [body_json(s) for s in sent]


def test_a_forced_dispatch_sends_a_slot_again_even_inside_a_pause(pg_dsn: str) -> None:
    slot = Slot(JOB, START)

    async def main() -> tuple[list[Slot], list[Slot], list[str], str]:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn, max_size=2) as db:
            sender = PgSender("probe-jobs", clock=lambda: START)
            await dispatch(db, sender, [slot], source="scheduler")
            await pause(db, JOB.name, START - MINUTE, None)
            unforced = await dispatch(db, sender, [slot], source="reconciler")
            forced = await dispatch(db, sender, [slot], source="enqueue", force=True)
            rows = await db.fetch("SELECT body FROM cronwright.queue ORDER BY id")
            source = await db.fetch("SELECT source FROM cronwright.dispatched")
        return unforced, forced, [r["body"] for r in rows], source[0]["source"]

    unforced, forced, bodies, source = run(main())
    assert (unforced, forced, source) == ([], [slot], "enqueue")
    assert bodies == [body_json(slot)] * 2


def test_a_remote_sender_never_sends_a_slot_inside_a_pause(pg_dsn: str) -> None:
    async def main() -> tuple[list[Slot], list[str]]:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn, max_size=3) as db:
            await pause(db, JOB.name, SLOTS[1].slot, SLOTS[3].slot)
            sent = await dispatch(db, Watching(db), SLOTS[:5], source="reconciler")
            return sent, await queued_slots(db)

    sent, queued = run(main())
    assert sent == [SLOTS[0], SLOTS[3], SLOTS[4]]
    assert queued == [iso(s.slot) for s in sent]
