"""Sending slots to a queue, each at most once: the one path for the local scheduler, the
reconciler, ``enqueue`` and dead-letter replay.

A dispatch claims ``(job, slot)`` rows in ``cronwright.dispatched`` (the statement
``dispatch.claim``) and sends the claimed slots, all or none of them, through its
:class:`Sender`. Without ``force`` a slot already dispatched, or inside a runtime pause,
is skipped: the claim's primary key makes each slot sent once however many schedulers
and reconcilers run, and a paused slot is never sent. ``force`` (an operator's command)
sends it again.

How a batch is claimed and sent is the sender's:

- the Postgres queue (:class:`engine.adapters.pgqueue.PgSender`) claims, filters and
  inserts its queue rows in one statement, its own implicit transaction: one round trip
  per batch, and claim and enqueue commit together;
- a remote queue (Cloudflare) claims in a transaction, sends, then commits
  (:func:`claim_then_send`): if the send fails nothing is claimed and the next pass tries
  again; if the commit fails after a send, the slot may be sent twice, and the run ledger
  turns the second delivery into a duplicate.

Slots go in batches of the sender's ``batch`` size, oldest first: a hundred for
Cloudflare (one sendBatch call), a thousand for the Postgres queue. A transaction stays
bounded however long the catch-up, and a failed Cloudflare call leaves unclaimed only the
slots it carried. A failure stops the dispatch there: the batches before it stay
dispatched, and the next pass (the scheduler's retry of its tick, the reconciler's next
pass) skips them and sends the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.core.model import Job
from engine.core.queries import query
from engine.core.times import iso
from engine.runtime.ports import Db


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
    """A queue transport."""

    transport: str  # "postgres" | "cloudflare"
    batch: int  # slots per claim

    async def send_batch(
        self, db: Db, slots: Sequence[Slot], *, source: str, force: bool, by: str | None
    ) -> list[Slot]:
        """Claim ``slots`` (distinct, oldest first) and send the claimed ones, all or
        none of them (the module doc's rules); returns them, in order."""
        ...


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
        sent += await sender.send_batch(db, batch, source=source, force=force, by=by)
    return sent


def _order(s: Slot) -> tuple[datetime, str]:
    return s.slot, s.job.name


def claim_args(
    slots: Sequence[Slot], *, source: str, transport: str, force: bool, by: str | None
) -> tuple[Any, ...]:
    """The first seven parameters of ``dispatch.claim``: the slots, who sends them, on
    which transport, forced or not, the operator who asked, each slot's rerun request."""
    jobs, times, reruns = (
        [s.job.name for s in slots],
        [s.slot for s in slots],
        [s.rerun for s in slots],
    )
    return jobs, times, source, transport, force, by, reruns


def claimed(slots: Sequence[Slot], rows: Sequence[dict[str, Any]]) -> list[Slot]:
    """The slots ``dispatch.claim`` returned the positions of."""
    return [slots[r["i"] - 1] for r in rows]


async def claim_then_send(
    db: Db,
    slots: Sequence[Slot],
    *,
    source: str,
    transport: str,
    force: bool,
    by: str | None,
    send: Callable[[Sequence[Slot]], Awaitable[None]],
) -> list[Slot]:
    """A remote queue's batch: claim in a transaction, ``send`` the claimed slots, then
    commit; a send that fails rolls the claim back."""
    async with db.transaction() as tx:
        rows = await tx.fetch(
            query("dispatch.claim"),
            *claim_args(slots, source=source, transport=transport, force=force, by=by),
            None,
            None,
            None,
        )
        sent = claimed(slots, rows)
        if sent:
            await send(sent)
    return sent


async def record(db: Db, job: str, slot: datetime) -> dict[str, Any] | None:
    """What cronwright sent of ``job``'s ``slot`` (source, transport, when, who asked,
    the rerun request), or None when it sent nothing."""
    async with db.transaction() as tx:
        return await tx.fetchrow(query("dispatch.record"), job, slot)
