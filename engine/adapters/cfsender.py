"""The Cloudflare Queues transport for dispatch: the Worker's body, sent through the
REST API's batch endpoint (``engine.runtime.dispatch.Sender``)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.adapters.cfqueue import MAX_BATCH, QueuesClient
from engine.runtime.dispatch import Slot
from engine.runtime.ports import Tx


class CloudflareSender:
    """Sends inside the claiming transaction: a failed send rolls the claim back, and the
    next pass tries again."""

    transport = "cloudflare"
    batch = MAX_BATCH  # one sendBatch call per claiming transaction

    def __init__(self, client: QueuesClient, queue_id: str) -> None:
        self._client = client
        self._queue_id = queue_id

    async def send(self, tx: Tx, slots: Sequence[Slot]) -> None:
        await self._client.send_batch(self._queue_id, [s.body() for s in slots])
