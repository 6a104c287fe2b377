"""The Cloudflare Queues transport for dispatch: the Worker's body, sent through the
REST API's batch endpoint (``engine.runtime.dispatch.Sender``)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.adapters.cfqueue import MAX_BATCH, QueuesClient
from engine.runtime.dispatch import Slot, claim_then_send
from engine.runtime.ports import Db


class CloudflareSender:
    """Sends inside the claiming transaction (:func:`claim_then_send`): a failed send
    rolls the claim back, and the next pass tries again."""

    transport = "cloudflare"
    batch = MAX_BATCH  # one sendBatch call per claiming transaction

    def __init__(self, client: QueuesClient, queue_id: str) -> None:
        self._client = client
        self._queue_id = queue_id

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
        await self._client.send_batch(self._queue_id, [s.body() for s in slots])
