"""The local queue in Postgres (``cronwright.queue``, migration 0004), with Cloudflare
Queues' delivery semantics: at-least-once, a per-message delay, and ``attempts`` counted
from 1 on each delivery.

A claim leases a message by moving its ``visible_at`` to now + lease (``FOR UPDATE SKIP
LOCKED``: consumers never wait on each other); a heartbeat keeps moving it while the run
lasts, so a consumer killed mid-run gives its messages back when the lease runs out. An
ack deletes the row, and can run inside the job's own transaction, so the effect, the
ledger row and the ack commit together. Every time here comes from the injected clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from engine.adapters.pg import Database
from engine.core.times import Clock
from engine.runtime.dispatch import Slot
from engine.runtime.ledger import Ack, Tx

CHANNEL = "cronwright_queue"

_PUT = """
INSERT INTO cronwright.queue (queue, body, job, slot, visible_at, enqueued_at)
SELECT $1, b, j, s, $5, $6
FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS u(b, j, s)
"""
# A function (migration 0009), so that the ready index is read in order whatever the
# queue's statistics say.
_CLAIM = "SELECT id, body, attempts, lease_id FROM cronwright.queue_claim($1, $2, $3, $4)"
# A function (migration 0006), so that its plan is kept: in the job's transaction it
# travels inlined with COMMIT.
_ACK = "SELECT cronwright.queue_ack($1::bigint, $2::uuid)"
# A retry that is not a failure of the job (a hand-back) gives its attempt back.
_RETRY = """
UPDATE cronwright.queue
SET visible_at = $3, lease_id = NULL, attempts = attempts - $4::integer
WHERE id = $1 AND lease_id = $2
"""
_RELEASE = """
UPDATE cronwright.queue AS q
SET visible_at = $3, lease_id = NULL, attempts = q.attempts - 1
FROM unnest($1::bigint[], $2::uuid[]) AS u(id, lease_id)
WHERE q.id = u.id AND q.lease_id = u.lease_id
"""
# A row being acked right now is locked by the job's transaction: skip it, don't wait.
_EXTEND = """
UPDATE cronwright.queue AS q SET visible_at = $3
FROM (
    SELECT id FROM cronwright.queue
    WHERE (id, lease_id) IN (SELECT * FROM unnest($1::bigint[], $2::uuid[]))
    FOR UPDATE SKIP LOCKED
) AS u
WHERE q.id = u.id
"""
_DEPTH = """
SELECT count(*) FILTER (WHERE visible_at <= $2 AND lease_id IS NULL) AS ready,
       count(*) FILTER (WHERE visible_at > $2 AND lease_id IS NULL) AS delayed,
       count(*) FILTER (WHERE lease_id IS NOT NULL) AS leased
FROM cronwright.queue WHERE queue = $1
"""


def body_json(slot: Slot) -> str:
    """The body exactly as the Worker's ``JSON.stringify`` writes it."""
    return json.dumps(slot.body(), separators=(",", ":"))


@dataclass(frozen=True)
class Delivery:
    id: int
    body: str
    attempts: int  # this delivery's, from 1
    lease_id: UUID

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
    """A :class:`engine.runtime.dispatch.Sender` that inserts queue rows in the claiming
    transaction, so a slot is claimed and enqueued together or not at all."""

    transport = "postgres"
    batch = 1000  # slots per transaction: a long catch-up in bounded transactions

    def __init__(self, queue: str, *, clock: Clock) -> None:
        self._queue = queue
        self._clock = clock

    async def send(self, tx: Tx, slots: Sequence[Slot]) -> None:
        await tx.execute(
            _PUT,
            self._queue,
            [body_json(s) for s in slots],
            [s.job.name for s in slots],
            [s.slot for s in slots],
            now := self._clock(),
            now,
        )


class PgQueue:
    """One named queue in ``cronwright.queue``."""

    def __init__(self, db: Database, name: str, *, clock: Clock) -> None:
        self._db = db
        self.name = name
        self._clock = clock

    def _after(self, seconds: float) -> datetime:
        return self._clock() + timedelta(seconds=seconds)

    async def put_raw(self, bodies: Sequence[str], *, delay_seconds: float = 0.0) -> None:
        """Enqueue bodies as they are (tests, the demo's poison message); a body the
        executor cannot run is dead-lettered like any other."""
        async with self._db.transaction() as tx:
            await tx.execute(
                _PUT,
                self.name,
                list(bodies),
                [None] * len(bodies),
                [None] * len(bodies),
                self._after(delay_seconds),
                self._clock(),
            )

    async def claim(self, n: int, *, lease_seconds: float) -> list[Delivery]:
        """Lease up to ``n`` visible messages, oldest first."""
        rows = await self._db.fetch_one_statement(
            _CLAIM, self.name, self._clock(), self._after(lease_seconds), n
        )
        return [Delivery(r["id"], r["body"], r["attempts"], r["lease_id"]) for r in rows]

    def ack_in(self, delivery: Delivery) -> Ack:
        """The ack as a step of another transaction (the job's)."""
        row = (delivery.id, delivery.lease_id)
        return Ack(_ACK, row, queue_row=row)

    async def ack(self, delivery: Delivery) -> None:
        await self._db.fetch_one_statement(_ACK, delivery.id, delivery.lease_id)

    async def retry(self, delivery: Delivery, delay_seconds: float, *, handback: bool) -> None:
        """Visible again after the delay; a hand-back does not count as an attempt."""
        await self._db.fetch_one_statement(
            _RETRY, delivery.id, delivery.lease_id, self._after(delay_seconds), int(handback)
        )

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Visible again now, the attempt given back (a consumer stopping)."""
        if deliveries:
            await self._db.fetch_one_statement(
                _RELEASE,
                [d.id for d in deliveries],
                [d.lease_id for d in deliveries],
                self._clock(),
            )

    async def extend(self, deliveries: Sequence[Delivery], *, lease_seconds: float) -> None:
        """The heartbeat: push the leases of running deliveries forward."""
        if deliveries:
            await self._db.fetch_one_statement(
                _EXTEND,
                [d.id for d in deliveries],
                [d.lease_id for d in deliveries],
                self._after(lease_seconds),
            )

    async def depth(self) -> Depth:
        rows = await self._db.fetch_one_statement(_DEPTH, self.name, self._clock())
        return Depth(rows[0]["ready"], rows[0]["delayed"], rows[0]["leased"])

    def pinned(self) -> Any:
        """While the block runs, the calling task (a consumer's worker) keeps one
        connection for its claims and its jobs (``Database.pinned``)."""
        return self._db.pinned()

    def listening(self, wake: Callable[[], None]) -> Any:
        """Call ``wake`` whenever a message is enqueued (LISTEN/NOTIFY)."""
        return self._db.listening(CHANNEL, wake)
