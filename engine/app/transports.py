"""The queue transports slots are sent on: ``postgres`` (the local queue,
``cronwright.queue``, that ``serve`` consumes) or ``cloudflare`` (the Queue the Worker
sends to, over the REST API).

``configured`` is the one choice of transport and ``open_sender`` the one factory of
senders: the local scheduler, the reconciler, ``enqueue`` and dead-letter replay send
through it with :func:`engine.runtime.dispatch.dispatch`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from engine.core.errors import ConfigError
from engine.core.model import Manifest
from engine.core.times import Clock
from engine.runtime.dispatch import Sender

if TYPE_CHECKING:
    from engine.adapters.cfqueue import QueuesClient

TRANSPORTS = ("cloudflare", "postgres")
ENV_VAR = "CRONWRIGHT_TRANSPORT"


def configured(
    flag: str | None, manifest: Manifest, environ: Mapping[str, str] | None = None
) -> str:
    """The transport, for every command: the command's flag, else $CRONWRIGHT_TRANSPORT,
    else the manifest's (``transport:``, default cloudflare with a ``worker:`` block and
    postgres without)."""
    env = os.environ if environ is None else environ
    name = (flag or env.get(ENV_VAR) or manifest.transport.value).strip().lower()
    source = "--transport" if flag else ENV_VAR
    if name not in TRANSPORTS:
        raise ConfigError(
            f"unknown transport '{name}' (from {source})",
            hint=f"use one of: {', '.join(TRANSPORTS)}",
        )
    if name == "cloudflare" and not manifest.cloudflare:  # as validate refuses the key
        raise ConfigError(
            f"transport cloudflare (from {source}) needs the Worker that sends slots to the"
            " queue, and this manifest has no 'worker:' block",
            hint="add a 'worker:' block to the manifest, or use --transport postgres",
        )
    return name


@asynccontextmanager
async def open_sender(
    manifest: Manifest,
    transport: str,
    environ: Mapping[str, str],
    *,
    clock: Clock | None = None,
    client: QueuesClient | None = None,
) -> AsyncIterator[Sender]:
    """A Sender for ``transport``, open for the block. ``postgres`` inserts into the
    manifest's local queue (``clock``: None for the database's time); ``cloudflare``
    pushes to the manifest's queue over the REST API, with ``client`` or a client of its
    own (CLOUDFLARE_* from ``environ``)."""
    name = configured(transport, manifest, environ)
    if name == "postgres":
        from engine.adapters.pgqueue import PgSender

        yield PgSender(manifest.queue.name, clock=clock)
        return
    from engine.adapters.cfqueue import QueuesClient, Settings
    from engine.adapters.cfsender import CloudflareSender

    if client is not None:
        ids = await client.queue_ids([manifest.queue.name])
        yield CloudflareSender(client, ids[manifest.queue.name])
        return
    async with QueuesClient(Settings.from_env(environ)) as own:
        ids = await own.queue_ids([manifest.queue.name])
        yield CloudflareSender(own, ids[manifest.queue.name])
