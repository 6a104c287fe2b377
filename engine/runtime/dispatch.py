"""Sending slots to a queue, each at most once: the one path for the local scheduler, the
reconciler, ``enqueue`` and dead-letter replay.

A dispatch claims ``(job, slot)`` rows in ``cronwright.dispatched`` and hands the
messages to a :class:`Sender` inside the same transaction. A Postgres queue inserts its
rows in that transaction, so claim and enqueue commit together. A remote queue (Cloudflare)
is sent before the commit: if the send fails nothing is claimed and the next pass tries
again; if the commit fails after a send, the slot may be sent twice, and the run ledger
turns the second delivery into a duplicate.

Slots go in chunks of ``CHUNK``, oldest first, each claimed and sent in a transaction of
its own. A long catch-up's first messages are on the queue, and running, while the rest
are still being enqueued; a remote queue is sent one batch call per chunk, so a failed
call leaves unclaimed only the slots it carried. A failure stops the dispatch there: the
chunks before it stay dispatched, and the next pass (the scheduler's retry of its tick, the
reconciler's next pass) skips them and sends the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.core.model import Job
from engine.core.times import iso
from engine.runtime.ledger import Db, Tx


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

    async def send(self, tx: Tx, slots: Sequence[Slot]) -> None: ...


_CLAIM = """
INSERT INTO cronwright.dispatched AS d (job, slot, source, transport)
SELECT j, s, $3, $4 FROM unnest($1::text[], $2::timestamptz[]) AS u(j, s)
ON CONFLICT (job, slot) DO {on_conflict}
RETURNING d.job, d.slot
"""
_CLAIM_NEW = _CLAIM.format(on_conflict="NOTHING")
_CLAIM_FORCE = _CLAIM.format(
    on_conflict="UPDATE SET source = EXCLUDED.source, transport = EXCLUDED.transport,"
    " dispatched_at = now()"
)


#: Slots per transaction: Cloudflare's sendBatch takes at most 100 messages.
CHUNK = 100


async def dispatch(
    db: Db, sender: Sender, slots: Sequence[Slot], *, source: str, force: bool = False
) -> list[Slot]:
    """Claim and send ``slots``, ``CHUNK`` at a time; returns those this call sent. Without
    ``force`` a slot already dispatched (by anyone) is skipped; ``force`` re-sends it
    (operator commands)."""
    unique = list({(s.job.name, s.slot): s for s in sorted(slots, key=_order)}.values())
    sent: list[Slot] = []
    for i in range(0, len(unique), CHUNK):
        sent += await _dispatch_chunk(db, sender, unique[i : i + CHUNK], source, force)
    return sent


def _order(s: Slot) -> tuple[datetime, str]:
    return s.slot, s.job.name


async def _dispatch_chunk(
    db: Db, sender: Sender, slots: Sequence[Slot], source: str, force: bool
) -> list[Slot]:
    by_key = {(s.job.name, s.slot): s for s in slots}
    async with db.transaction() as tx:
        rows = await tx.fetch(
            _CLAIM_FORCE if force else _CLAIM_NEW,
            [s.job.name for s in by_key.values()],
            [s.slot for s in by_key.values()],
            source,
            sender.transport,
        )
        claimed = sorted((by_key[(r["job"], r["slot"])] for r in rows), key=_order)
        if claimed:
            await sender.send(tx, claimed)
    return claimed
