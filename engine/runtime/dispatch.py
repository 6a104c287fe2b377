"""Sending slots to a queue, each at most once: the one path for the local scheduler, the
reconciler, ``enqueue`` and dead-letter replay.

A dispatch claims ``(job, slot)`` rows in ``cronwright.dispatched`` and hands the
messages to a :class:`Sender` inside the same transaction. A Postgres queue inserts its
rows in that transaction, so claim and enqueue commit together. A remote queue (Cloudflare)
is sent before the commit: if the send fails nothing is claimed and the next pass tries
again; if the commit fails after a send, the slot may be sent twice, and the run ledger
turns the second delivery into a duplicate.

Slots go in batches of the sender's ``batch`` size, oldest first, each claimed and sent in
a transaction of its own: a hundred for Cloudflare (one sendBatch call), a thousand for
the Postgres queue. A transaction stays bounded however long the catch-up, and a failed
Cloudflare call leaves unclaimed only the slots it carried. A failure stops the dispatch
there: the batches before it stay dispatched, and the next pass (the scheduler's retry
of its tick, the reconciler's next pass) skips them and sends the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.core.model import Job
from engine.core.queries import query
from engine.core.times import iso
from engine.runtime.ports import Db, Tx


@dataclass(frozen=True)
class Slot:
    job: Job
    slot: datetime
    rerun: str | None = None  # a rerun request id (a replayed rerun carries its own)

    def body(self) -> dict[str, Any]:
        """The body the generated Worker sends for this slot (plus ``rerun`` when set)."""
        body: dict[str, Any] = {"type": self.job.type, "scheduledFor": iso(self.slot)}
        if self.rerun is not None:
            body["rerun"] = self.rerun
        return body


class Sender(Protocol):
    """A queue transport. ``send`` runs inside the claiming transaction."""

    transport: str  # "postgres" | "cloudflare"
    batch: int  # slots per claiming transaction

    async def send(self, tx: Tx, slots: Sequence[Slot]) -> None: ...


async def dispatch(
    db: Db,
    sender: Sender,
    slots: Sequence[Slot],
    *,
    source: str,
    force: bool = False,
    by: str | None = None,
) -> list[Slot]:
    """Claim and send ``slots``, ``sender.batch`` at a time; returns those this call
    sent. Without ``force`` a slot already dispatched (by anyone) is skipped; ``force``
    re-sends it (operator commands). ``by``: the operator who asked (``cli:USER``,
    ``ui:NAME``), kept with the claim beside each slot's rerun request id."""
    unique = list({(s.job.name, s.slot): s for s in sorted(slots, key=_order)}.values())
    sent: list[Slot] = []
    for i in range(0, len(unique), sender.batch):
        batch = unique[i : i + sender.batch]
        sent += await _dispatch_batch(db, sender, batch, source, force, by)
    return sent


def _order(s: Slot) -> tuple[datetime, str]:
    return s.slot, s.job.name


async def _dispatch_batch(
    db: Db, sender: Sender, slots: Sequence[Slot], source: str, force: bool, by: str | None
) -> list[Slot]:
    """``slots``: distinct, in order."""
    async with db.transaction() as tx:
        rows = await tx.fetch(
            query("dispatch.claim_again") if force else query("dispatch.claim"),
            [s.job.name for s in slots],
            [s.slot for s in slots],
            source,
            sender.transport,
            by,
            [s.rerun for s in slots],
        )
        claimed = [slots[r["i"] - 1] for r in rows]
        if claimed:
            await sender.send(tx, claimed)
    return claimed


async def record(db: Db, job: str, slot: datetime) -> dict[str, Any] | None:
    """What cronwright sent of ``job``'s ``slot`` (source, transport, when, who asked,
    the rerun request), or None when it sent nothing."""
    async with db.transaction() as tx:
        return await tx.fetchrow(query("dispatch.record"), job, slot)
