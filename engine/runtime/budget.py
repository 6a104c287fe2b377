"""A message's attempt budget on a queue that counts every delivery (Cloudflare Queues).

Cloudflare counts deliveries, and moves a message to its dead-letter queue after
``max_retries + 1`` of them. Two rules keep that count honest for cronwright:

- a hand-back (``Outcome.handback``: the slot was not due, the dead letter could not be
  written, the consumer could not run it) is not a job attempt. Hand-backs are counted in
  ``cronwright.handbacks`` and the job's attempt is the delivery count minus them, so
  they never dead-letter a job early. ``preflight.sh`` gives the queue's ``max_retries``
  room for them (``Manifest.consumer_max_retries``).
- on the last delivery Cloudflare allows, nothing is handed back: a retry is
  dead-lettered by us first, so Cloudflare's DLQ never holds a message without its
  ``cronwright.dead_letters`` row.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.queries import query
from engine.runtime.ports import Db


@dataclass(frozen=True)
class DeliveryBudget:
    """Hand-back bookkeeping for one queue whose messages get ``deliveries`` at most."""

    db: Db
    queue: str
    deliveries: int

    def last(self, delivery: int) -> bool:
        """Whether Cloudflare moves the message to its DLQ if this delivery hands it back."""
        return delivery >= self.deliveries

    async def job_attempt(self, message_id: str, delivery: int) -> int:
        """The job's attempt for this delivery: deliveries so far minus hand-backs."""
        if delivery <= 1:
            return 1  # a first delivery has no hand-backs before it: no query
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(query("handbacks.count"), self.queue, message_id)
        return max(1, delivery - (int(row["count"]) if row else 0))

    async def handed_back(self, message_id: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(query("handbacks.add"), self.queue, message_id)

    async def forget(self, message_ids: list[str]) -> None:
        """Acked messages need their counts no more."""
        if message_ids:
            async with self.db.transaction() as tx:
                await tx.execute(query("handbacks.forget"), self.queue, message_ids)
