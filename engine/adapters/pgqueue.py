"""The local queue in Postgres (``cronwright.queue``, migration 0004), with Cloudflare
Queues' delivery semantics: at-least-once, a per-message delay, and ``attempts`` counted
from 1 on each delivery.

A claim leases a message by moving its ``visible_at`` to now + lease (``FOR UPDATE SKIP
LOCKED``: consumers never wait on each other); a heartbeat keeps moving it while the run
lasts, so a consumer killed mid-run gives its messages back when the lease runs out. An
ack deletes the row, and can run inside the job's own transaction, so the effect, the
ledger row and the ack commit together.

Every time here is the database's (``now()``), so that hosts whose clocks disagree can
neither steal each other's leases nor starve: a consumer whose host runs five minutes
ahead sees the same leases as everyone else. Tests and the demo, which run on an
accelerated clock, pass it as ``clock``; its times are then used instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.adapters.pg import Database
from engine.core.queries import query
from engine.core.times import Clock
from engine.runtime.dispatch import Slot, claim_args, claimed
from engine.runtime.ledger import Ack
from engine.runtime.ports import Db

CHANNEL = "cronwright_queue"


def body_json(slot: Slot) -> str:
    """The body exactly as the Worker's ``JSON.stringify`` writes it."""
    return json.dumps(slot.body(), separators=(",", ":"))


@dataclass(frozen=True)
class Delivery:
    id: int
    body: str
    attempts: int  # this delivery's, from 1
    lease_id: UUID
    claimed_at: datetime  # the queue's time of the claim (the database's clock)

    @property
    def message_id(self) -> str:
        return f"pg-{self.id}"


@dataclass(frozen=True)
class Depth:
    ready: int
    delayed: int
    leased: int

    @property
    def total(self) -> int:
        return self.ready + self.delayed + self.leased


class PgSender:
    """A :class:`engine.runtime.dispatch.Sender` whose batch is one statement: the claim
    (pauses and earlier dispatches skipped) and the queue rows of the claimed slots, in
    its own implicit transaction, so a slot is claimed and enqueued together or not at
    all, in one round trip. A scheduler's tick of 1,000 slots is that one statement."""

    transport = "postgres"
    batch = 1000  # slots per statement: a long catch-up in bounded transactions

    def __init__(self, queue: str, *, clock: Clock | None = None) -> None:
        self._queue = queue
        self._clock = clock

    async def send_batch(
        self, db: Db, slots: Sequence[Slot], *, source: str, force: bool, by: str | None
    ) -> list[Slot]:
        rows = await db.fetch_one_statement(
            query("dispatch.claim"),
            *claim_args(slots, source=source, transport=self.transport, force=force, by=by),
            self._queue,
            [body_json(s) for s in slots],
            self._clock() if self._clock else None,
        )
        return claimed(slots, rows)


class PgQueue:
    """One named queue in ``cronwright.queue``. ``clock``: None for the database's."""

    def __init__(self, db: Database, name: str, *, clock: Clock | None = None) -> None:
        self._db = db
        self.name = name
        self._clock = clock

    def _now(self) -> datetime | None:
        """The time to pass: None lets the database use its own."""
        return self._clock() if self._clock else None

    async def put_raw(self, bodies: Sequence[str], *, delay_seconds: float = 0.0) -> None:
        """Enqueue bodies as they are (tests, the demo's poison message); a body the
        executor cannot run is dead-lettered like any other."""
        async with self._db.transaction() as tx:
            await tx.execute(
                query("queue.put"),
                self.name,
                list(bodies),
                [None] * len(bodies),
                [None] * len(bodies),
                self._now(),
                float(delay_seconds),
            )

    async def claim(self, n: int, *, lease_seconds: float) -> list[Delivery]:
        """Lease up to ``n`` visible messages, oldest first."""
        rows = await self._db.fetch_one_statement(
            query("queue.claim"), self.name, self._now(), float(lease_seconds), n
        )
        return [
            Delivery(r["id"], r["body"], r["attempts"], r["lease_id"], r["claimed_at"])
            for r in rows
        ]

    def ack_in(self, delivery: Delivery) -> Ack:
        """The ack as a step of another transaction (the job's)."""
        row = (delivery.id, delivery.lease_id)
        return Ack(query("queue.ack"), row, queue_row=row)

    async def ack(self, delivery: Delivery) -> None:
        await self._db.fetch_one_statement(query("queue.ack"), delivery.id, delivery.lease_id)

    async def retry(self, delivery: Delivery, delay_seconds: float, *, handback: bool) -> None:
        """Visible again after the delay; a hand-back does not count as an attempt."""
        await self._db.fetch_one_statement(
            query("queue.retry"),
            delivery.id,
            delivery.lease_id,
            self._now(),
            int(handback),
            float(delay_seconds),
        )

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Visible again now, the attempt given back (a consumer stopping)."""
        if deliveries:
            await self._db.fetch_one_statement(
                query("queue.release"),
                [d.id for d in deliveries],
                [d.lease_id for d in deliveries],
                self._now(),
            )

    async def extend(self, deliveries: Sequence[Delivery], *, lease_seconds: float) -> None:
        """The heartbeat: push the leases of running deliveries forward."""
        if deliveries:
            await self._db.fetch_one_statement(
                query("queue.extend"),
                [d.id for d in deliveries],
                [d.lease_id for d in deliveries],
                self._now(),
                float(lease_seconds),
            )

    async def depth(self) -> Depth:
        rows = await self._db.fetch_one_statement(query("queue.depth"), self.name, self._now())
        return Depth(rows[0]["ready"], rows[0]["delayed"], rows[0]["leased"])

    def pinned(self) -> Any:
        """While the block runs, the calling task (a consumer's worker) keeps one
        connection for its claims and its jobs (``Database.pinned``)."""
        return self._db.pinned()

    def listening(self, wake: Callable[[], None]) -> Any:
        """Call ``wake`` whenever a message is enqueued (LISTEN/NOTIFY)."""
        return self._db.listening(CHANNEL, wake)
