"""The queue transports an operator command can send on: ``postgres`` (the local queue,
``cronwright.queue``) or ``cloudflare`` (the Queue the Worker sends to, over the REST API).

``open_sender`` is the one factory; ``enqueue`` (and, later, reconcile and dead-letter
replay) send through it with :func:`engine.runtime.dispatch.dispatch`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime

from engine.core.errors import ConfigError
from engine.core.model import Manifest
from engine.runtime.dispatch import Sender
from engine.runtime.executor import Clock
from engine.runtime.ledger import Db

TRANSPORTS = ("cloudflare", "postgres")
ENV_VAR = "CRONWRIGHT_TRANSPORT"


def configured(flag: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The transport: the command's flag, else $CRONWRIGHT_TRANSPORT, else cloudflare."""
    env = os.environ if environ is None else environ
    name = (flag or env.get(ENV_VAR) or "cloudflare").strip().lower()
    if name not in TRANSPORTS:
        raise ConfigError(
            f"unknown transport '{name}' (from {'--transport' if flag else ENV_VAR})",
            hint=f"use one of: {', '.join(TRANSPORTS)}",
        )
    return name


def open_sender(
    manifest: Manifest,
    transport: str,
    db: Db,
    environ: Mapping[str, str],
    *,
    clock: Clock | None = None,
) -> Sender:
    """A sender for ``transport``. ``db`` is where dispatches are claimed (and, for
    postgres, where the queue is)."""
    if transport == "postgres":
        from engine.adapters.pgqueue import PgSender

        return PgSender(manifest.queue.name, clock=clock or (lambda: datetime.now(UTC)))
    raise ConfigError(
        "the cloudflare transport is not available yet for sending",
        hint="use --transport postgres (the local queue that `cronwright serve` consumes)",
    )
