"""``cronwright serve`` and ``cronwright consume --transport postgres``: running without
Cloudflare. ``serve`` is the local scheduler plus N consumers of the Postgres queue in one
process; ``consume --transport postgres`` is the consumers alone. Any number of either,
on any number of machines, share one queue (``cronwright.queue``) and one ledger.

Clock and sleep are injected: the demo runs a day in seconds with an accelerated clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass

from engine.adapters.pgqueue import PgQueue, PgSender
from engine.app import housekeeping, observe, wiring
from engine.app.consume import stop_on_signals
from engine.app.pgconsumer import LocalConsumer, Settings, Tally
from engine.app.reconciler import Reconciler
from engine.app.scheduler import Scheduler
from engine.core.model import Manifest
from engine.core.times import Clock, Sleep
from engine.runtime.metrics import JsonLines, MetricsSink

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0  # seconds the scheduler and the gauges get to finish once stopped


@dataclass(frozen=True, kw_only=True)
class Options:
    consumers: int = 4
    scheduler: bool = True
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_refresh_seconds: float = 15.0
    grace_seconds: float = 30.0
    lease_seconds: float = 60.0
    heartbeat_seconds: float | None = None  # real seconds; default: a third of the lease
    max_messages: int | None = None  # stop after this many deliveries (tests, demo)
    reconcile_seconds: float | None = None  # the reconciler's interval; None: off (serve: 60)
    prune_seconds: float | None = 86_400.0  # the retention prune's interval; None: off


async def serve(
    manifest: Manifest,
    options: Options,
    *,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
    clock: Clock = wiring.utc_now,
    sleep: Sleep = asyncio.sleep,
    metrics: MetricsSink | None = None,
    rng: random.Random | None = None,
    handle_signals: bool = True,
    started: Callable[[int | None], None] | None = None,
) -> Tally:
    """Run until SIGTERM/SIGINT (or ``max_messages``). ``started`` gets the metrics port
    once everything is up."""
    env = os.environ if environ is None else environ
    dsn = dsn or wiring.database_url(env)
    templates = wiring.load_templates(manifest)
    prom = observe.Metrics(manifest, forward=metrics or JsonLines(sys.stderr))
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(
            wiring.open_database(dsn, max_size=options.consumers + 3)
        )
        actions = await stack.enter_async_context(wiring.open_actions(manifest, env, clock=clock))
        executor = wiring.build_executor(
            db,
            manifest,
            templates=templates,
            actions=actions,
            metrics=prom,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )
        queue = PgQueue(db, manifest.queue.name, clock=clock)
        consumer = LocalConsumer(
            queue=queue,
            executor=executor,
            settings=Settings(
                consumers=options.consumers,
                lease_seconds=options.lease_seconds,
                heartbeat_seconds=options.heartbeat_seconds or options.lease_seconds / 3,
                grace_seconds=options.grace_seconds,
                retry_delay_seconds=manifest.queue.consumer.retry_delay_seconds,
            ),
            max_messages=options.max_messages,
        )
        scheduler = (
            Scheduler(
                db=db,
                manifest=manifest,
                sender=PgSender(queue.name, clock=clock),
                clock=clock,
                sleep=sleep,
                environ=env,
            )
            if options.scheduler
            else None
        )
        port = None
        if options.metrics_port is not None:
            server = await stack.enter_async_context(
                observe.http_endpoint(prom, options.metrics_port, options.metrics_host)
            )
            port = observe.bound_port(server)
        stopping = asyncio.Event()
        background = [
            asyncio.create_task(
                observe.refresh_every(
                    options.metrics_refresh_seconds,
                    prom,
                    db,
                    queue.name,
                    observe.local_depth(queue),
                    manifest,
                    clock,
                    stopping,
                )
            )
        ]
        if options.reconcile_seconds is not None:
            reconciler = Reconciler(
                db, manifest, PgSender(queue.name, clock=clock), clock=clock, environ=env
            )
            background.append(
                asyncio.create_task(reconciler.run_forever(stopping, options.reconcile_seconds))
            )
        if options.prune_seconds is not None:
            background.append(
                asyncio.create_task(
                    housekeeping.prune_daily(db, manifest, clock, stopping, options.prune_seconds)
                )
            )
        if scheduler is not None:
            background.append(asyncio.create_task(scheduler.run()))

        def stop() -> None:
            consumer.stop()
            if scheduler is not None:
                scheduler.stop()

        def died(task: asyncio.Task[None]) -> None:
            # A scheduler or gauge loop that failed for good stops the process (its
            # error is raised below), rather than leaving consumers without a scheduler.
            if not task.cancelled() and task.exception() is not None:
                stop()

        for task in background:
            task.add_done_callback(died)

        try:
            with stop_on_signals(stop) if handle_signals else nullcontext():
                if started is not None:
                    started(port)
                tally = await consumer.run()
        finally:
            # Let the scheduler finish its tick and the gauges their refresh, then cut.
            stop()
            stopping.set()
            _, late = await asyncio.wait(background, timeout=STOP_TIMEOUT)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for task in background:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return tally
