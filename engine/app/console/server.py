"""Opening the console: beside a ``serve`` (``--ui-port``), on the service's database, or
as a process of its own (``cronwright ui``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from engine.app import transports, web, wiring
from engine.app.console import app, auth, pages, views
from engine.app.logsecrets import known_secrets
from engine.app.signals import stop_on_signals
from engine.core.model import Manifest
from engine.core.times import Clock
from engine.runtime import scheduling
from engine.runtime.slotstore import PgSlotStore

if TYPE_CHECKING:
    from engine.adapters.pg import Database

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def _triggers(manifest: Manifest) -> dict[str, str]:
    """Each job's Cloudflare trigger when the manifest deploys a Worker (the fold)."""
    if not manifest.cloudflare:
        return {}
    from engine.codegen import generate

    folded = generate.fold_of(manifest)
    return {job.name: generate.job_trigger(folded, job) for job in manifest.jobs}


def _depth(db: Database, manifest: Manifest, transport: str) -> views.Depth | None:
    if transport != "postgres":
        return None  # Cloudflare reports a backlog only to the consumer that pulls
    from engine.adapters.pgqueue import PgQueue
    from engine.app.observe import local_depth

    return local_depth(PgQueue(db, manifest.queue.name))


@asynccontextmanager
async def open_console(
    manifest: Manifest,
    db: Database,
    *,
    port: int,
    host: str,
    transport: str,
    grace: timedelta,
    environ: Mapping[str, str],
    clock: Clock = wiring.utc_now,
    refresh_seconds: float = pages.REFRESH_SECONDS,
) -> AsyncIterator[str]:
    """The console on ``host:port`` while the block runs; yields its address
    (``http://HOST:PORT/``, the port bound for 0). ConfigError, one line, for a
    non-loopback host without a token, a short token, or an address it cannot bind."""
    token = auth.token_from(environ)
    auth.check_exposure(host, token)
    ctx = views.Context(
        manifest=manifest,
        transport=transport,
        grace=grace,
        templates=wiring.load_templates(manifest),
        environ=environ,
        clock=clock,
        depth=_depth(db, manifest, transport),
        triggers=_triggers(manifest),
    )
    console = pages.Console(
        ctx=ctx,
        db=db,
        keys=auth.Keys(token) if token else None,
        pages=pages.templates(),
        static=pages.static_files(),
        refresh_seconds=refresh_seconds,
        secrets=known_secrets(environ),
    )
    async with web.serve(
        app.build(console),
        port,
        host,
        what="the console",
        hint="choose another --port (serve: --ui-port), or a host of this machine",
    ) as runner:
        bound = web.bound_port(runner)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/"
        mode = "actions need a sign-in" if token else f"read-only: {auth.TOKEN_VAR} is not set"
        log.info("web console on %s (%s)", url, mode)
        yield url


async def run(
    manifest: Manifest,
    *,
    port: int,
    host: str,
    transport: str | None,
    environ: Mapping[str, str],
    started: Callable[[str], None],
) -> None:
    """``cronwright ui``: the console alone, until SIGTERM/SIGINT."""
    auth.check_exposure(host, auth.token_from(environ))  # before anything opens
    how = transports.configured(transport, manifest, environ)
    async with wiring.open_database(wiring.database_url(environ), max_size=4) as db:
        # Read-only, unlike a scheduler's start: the console never marks a job as deployed.
        await PgSlotStore(db).first_seen([j.name for j in manifest.jobs])  # migrated?
        async with open_console(
            manifest,
            db,
            port=port,
            host=host,
            transport=how,
            grace=scheduling.grace_for(how),
            environ=environ,
        ) as url:
            stopping = asyncio.Event()
            with stop_on_signals(stopping.set):
                started(url)
                await stopping.wait()
