"""Opening a queue transport by name: where dispatched slots go (the reconciler, the
local scheduler, the operator's enqueue)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from engine.core.errors import ConfigError
from engine.core.model import Manifest
from engine.runtime.dispatch import Sender
from engine.runtime.ledger import Db

TRANSPORTS = ("cloudflare", "postgres")


@asynccontextmanager
async def open_sender(
    manifest: Manifest, transport: str, db: Db, environ: Mapping[str, str]
) -> AsyncIterator[Sender]:
    """A Sender for ``transport``, open for the block. ``cloudflare`` pushes to the
    manifest's queue over the REST API (CLOUDFLARE_* from ``environ``)."""
    if transport == "cloudflare":
        from engine.adapters.cfqueue import QueuesClient, Settings
        from engine.adapters.cfsender import CloudflareSender

        async with QueuesClient(Settings.from_env(environ)) as client:
            ids = await client.queue_ids([manifest.queue.name])
            yield CloudflareSender(client, ids[manifest.queue.name])
        return
    raise ConfigError(
        f"unknown transport '{transport}'", hint=f"use one of {', '.join(TRANSPORTS)}"
    )
