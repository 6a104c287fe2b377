"""``cronwright serve`` and ``cronwright consume`` (either transport): the one composition
of a long-running process.

A service is a consumer (:mod:`engine.app.localconsumer` for the Postgres queue,
:mod:`engine.app.pullconsumer` for Cloudflare Queues) plus background loops: the local
scheduler (``serve`` only), the reconciler, the Prometheus gauges, the daily prune and,
when the manifest tells someone, the notifier's scan and send (:mod:`engine.app.notifier`);
and, when asked, the metrics endpoint and the web console (:mod:`engine.app.console`).
One policy for all of them:

- a loop's pass that fails (the database away, a bad row, a bug) is reported to the
  process's :class:`Health` (quiet, rate-limited logging) and the loop goes on;
- a loop that dies anyway, or a consumer worker that does, stops the process: its error
  is raised, and the command exits non-zero with it;
- what the process is for failing at start (the database unreachable, cronwright's
  schema missing, the metrics port taken) stops it at once with a one-line reason.

SIGTERM/SIGINT stop taking work; running jobs get ``drain_seconds`` to finish. Clock and
sleep are injectable (the demo runs a day in seconds); ``clock=None`` is the real clock,
and then the local queue takes its times from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.app import notifier as notifier_mod
from engine.app import observe, transports, wiring
from engine.app.health import Health
from engine.app.reconciler import Reconciler
from engine.app.scheduler import Scheduler
from engine.app.signals import stop_on_signals
from engine.app.tally import Tally
from engine.core.errors import ConfigError, ServiceFailed
from engine.core.model import ConsumerType, Manifest
from engine.core.queries import query
from engine.core.times import Clock, Sleep
from engine.runtime import outbox, retention
from engine.runtime.deadletters import CopiedDeadLetters, DeadLetterSink, PgDeadLetters
from engine.runtime.metrics import JsonLines, MetricsSink
from engine.runtime.pings import Pings
from engine.runtime.ports import Db
from engine.runtime.scheduling import grace_for
from engine.runtime.slotbook import SlotBook
from engine.runtime.slotstore import PgSlotStore

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400.0
STOP_TIMEOUT = 10.0  # seconds the loops get to finish their pass once stopped
#: Above this the host's clock is reported as off (the queue does not depend on it).
SKEW_WARNING_SECONDS = 5.0
#: How often a service measures its host's clock against the database's again.
CLOCK_CHECK_SECONDS = 60.0


@dataclass(frozen=True, kw_only=True)
class Options:
    transport: str  # "postgres" (the local queue) or "cloudflare" (pulled over the API)
    scheduler: bool = False  # serve: the local scheduler (postgres only)
    consumers: int | None = None  # workers (postgres: 4) or runs at once (cloudflare)
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    ui_port: int | None = None  # serve: the web console (engine.app.console)
    ui_host: str = "127.0.0.1"
    metrics_refresh_seconds: float = 15.0
    reconcile_seconds: float | None = 60.0  # None: no reconciler in this process
    grace_seconds: float | None = (
        None  # a due slot's grace before it is missing (None: by transport)
    )
    drain_seconds: float = 30.0  # SIGTERM: how long running jobs may finish
    lease_seconds: float = 60.0  # postgres: a delivery's lease, renewed while it runs
    heartbeat_seconds: float | None = None  # postgres: default a third of the lease
    prune_seconds: float | None = DAY_SECONDS  # the retention prune's interval; None: off
    max_messages: int | None = None  # postgres: stop after this many deliveries (tests, demo)
    max_batches: int | None = None  # cloudflare: stop after this many pulls (--once)
    # Notifications and pings (when the manifest has notify: or healthcheck:): the
    # notifier's passes, a send's timeout, and the outbox's retries (engine.runtime.outbox).
    notify_seconds: float | None = 10.0  # None: no notifier in this process
    notify_timeout_seconds: float = 10.0
    notify_tries: int = 10
    notify_first_delay_seconds: int = 30

    @property
    def grace(self) -> timedelta:
        if self.grace_seconds is not None:
            return timedelta(seconds=self.grace_seconds)
        return grace_for(self.transport)


async def every(
    seconds: float,
    what: str,
    work: Callable[[], Awaitable[Any]],
    stop: asyncio.Event,
    health: Health,
    *,
    wake: asyncio.Event | None = None,
    queries: bool = True,
) -> None:
    """Run ``work`` now and then every ``seconds`` (or as soon as ``wake`` is set) until
    ``stop`` is set; a pass that fails is reported and the next one tries again.
    ``queries``: every pass asks the database something, so one that went through says
    it is reachable (a steady reconcile pass asks nothing: it cannot say)."""
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            await work()
        except Exception as err:
            health.failed(what, err)
        else:
            if queries:
                health.ok()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, wake), seconds)


async def _first(stop: asyncio.Event, wake: asyncio.Event | None) -> None:
    """Until ``stop`` or ``wake`` is set."""
    if wake is None:
        await stop.wait()
        return
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


class DatabaseTime:
    """This host's clock moved onto the database's by the offset last measured: the time
    the scheduler fires by, the executor checks a slot against and the reconciler counts
    from, so that they agree with the leases and the queue's visibility, which the
    database's clock decides. A host whose clock is off then neither sends its slots
    early (to be refused as not yet due) nor late."""

    def __init__(self) -> None:
        self.offset = timedelta(0)  # this host's clock minus the database's

    def __call__(self) -> datetime:
        return wiring.utc_now() - self.offset

    async def measure(self, db: Db) -> None:
        """Measure the offset again; a warning when it is (or it moved) over the
        threshold: the clocks should be kept in sync (NTP)."""
        async with db.transaction() as tx:
            row = await tx.fetchrow(query("session.database_now"))
        assert row is not None
        offset = wiring.utc_now() - row["now"]
        moved = (offset - self.offset).total_seconds()
        self.offset = offset
        if abs(moved) > SKEW_WARNING_SECONDS:
            skew = offset.total_seconds()
            log.warning(
                "this host's clock is %.1f s %s the database's: cronwright keeps to the"
                " database's; keep the clocks in sync (NTP)",
                abs(skew),
                "ahead of" if skew > 0 else "behind",
            )


async def run(
    manifest: Manifest,
    options: Options,
    *,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    metrics: MetricsSink | None = None,
    rng: random.Random | None = None,
    health: Health | None = None,
    handle_signals: bool = True,
    started: Callable[[int | None], None] | None = None,
) -> Tally:
    """Run the service until SIGTERM/SIGINT (or its bound). ``started`` gets the metrics
    port once everything is up. ``sleep`` (tests, the demo): the waits of the scheduler,
    the executor and an idle pull consumer."""
    env = os.environ if environ is None else environ
    cloudflare = options.transport == "cloudflare"
    if cloudflare and manifest.queue.consumer.type is not ConsumerType.HTTP_PULL:
        raise ConfigError(
            f"queue {manifest.queue.name} is consumed by the Worker (queue.consumer.type: "
            f"{manifest.queue.consumer.type}), so nothing may pull it",
            hint="set queue.consumer.type: http_pull and run generated/preflight.sh to pull,"
            " or run the local queue with --transport postgres",
        )
    if options.scheduler and cloudflare:
        raise ConfigError("the local scheduler sends to the Postgres queue only")
    if options.ui_port is not None:  # named before anything opens
        from engine.app.console import auth

        auth.check_exposure(options.ui_host, auth.token_from(env))
    health = health or Health()
    # An injected clock (tests, the demo) is off on purpose: it is kept as it is.
    database_time = DatabaseTime() if clock is None else None
    now = clock or database_time or wiring.utc_now
    cf_settings = None
    if cloudflare:  # named before anything opens
        from engine.adapters import cfqueue

        cf_settings = cfqueue.Settings.from_env(env)
    dsn = dsn or wiring.database_url(env)
    templates = wiring.load_templates(manifest)
    prom = observe.Metrics(manifest, forward=metrics or JsonLines(sys.stderr))
    size = _consumers(manifest, options)
    async with AsyncExitStack() as stack:
        client = None
        if cf_settings is not None:
            from engine.adapters.cfqueue import QueuesClient

            client = await stack.enter_async_context(
                QueuesClient(cf_settings, max_connections=size + 4)
            )
        db = await stack.enter_async_context(wiring.open_database(dsn, max_size=size + 3))
        store = PgSlotStore(db)
        if database_time is not None:
            await database_time.measure(db)
        await store.register([j.name for j in manifest.jobs], now())  # also: is it migrated?
        actions = await stack.enter_async_context(wiring.open_actions(manifest, env, clock=now))
        sender = await stack.enter_async_context(
            transports.open_sender(manifest, options.transport, env, clock=clock, client=client)
        )
        consumer: Any
        depth: observe.Depth
        notifying = options.notify_seconds is not None
        wake = asyncio.Event()  # a ping or a notice waits: the notifier's sender wakes up
        pings = Pings(manifest, wake=wake.set) if notifying else None
        dead_letters: DeadLetterSink = PgDeadLetters(db)
        if client is not None:
            ids = await client.queue_ids([manifest.queue.name, manifest.queue.dead_letter_queue])
            queue_id, dlq_id = ids[manifest.queue.name], ids[manifest.queue.dead_letter_queue]
            dead_letters = CopiedDeadLetters(dead_letters, lambda body: client.send(dlq_id, body))
        executor = wiring.build_executor(
            db,
            manifest,
            templates=templates,
            actions=actions,
            metrics=prom,
            dead_letters=dead_letters,
            clock=now,
            sleep=sleep or asyncio.sleep,
            rng=rng,
            watch=pings or None,
        )
        if client is not None:
            from engine.app.pullconsumer import PullConsumer
            from engine.runtime.budget import DeliveryBudget

            consumer = PullConsumer(
                client=client,
                executor=executor,
                queue_id=queue_id,
                settings=manifest.queue.consumer,
                budget=DeliveryBudget(db, manifest.queue.name, manifest.consumer_max_retries + 1),
                concurrency=size,
                health=health,
                sleep=sleep,
            )

            async def backlog() -> Mapping[str, int | None]:
                return {"backlog": client.backlog.get(queue_id)}

            depth = backlog
        else:
            from engine.adapters.pgqueue import PgQueue
            from engine.app.localconsumer import LocalConsumer, LocalSettings

            queue = PgQueue(db, manifest.queue.name, clock=clock)
            consumer = LocalConsumer(
                queue=queue,
                executor=executor,
                settings=LocalSettings(
                    consumers=size,
                    lease_seconds=options.lease_seconds,
                    heartbeat_seconds=options.heartbeat_seconds or options.lease_seconds / 3,
                    drain_seconds=options.drain_seconds,
                    retry_delay_seconds=manifest.queue.consumer.retry_delay_seconds,
                ),
                health=health,
                max_messages=options.max_messages,
            )
            depth = observe.local_depth(queue)
        stopping = asyncio.Event()
        # Each background loop, started once everything is up (a port taken leaves no
        # loop begun and never awaited).
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        book = SlotBook(store, manifest.jobs, grace=options.grace, register=True)
        scheduler = None
        if options.scheduler:
            scheduler = Scheduler(
                db=db,
                store=store,
                manifest=manifest,
                sender=sender,
                clock=now,
                sleep=sleep or asyncio.sleep,
                environ=env,
                health=health,
                # Only a book something refreshes: it forgets what a refresh has passed.
                book=book if options.reconcile_seconds is not None else None,
            )
            loops["scheduler"] = scheduler.run
        if options.reconcile_seconds is not None:
            reconciler = Reconciler(db, manifest, sender, book, environ=env)
            loops["reconciler"] = functools.partial(
                every,
                options.reconcile_seconds,
                "reconcile pass",
                lambda: reconciler.run_once(now()),
                stopping,
                health,
                queries=False,
            )
        if database_time is not None:
            loops["clock check"] = functools.partial(
                every,
                CLOCK_CHECK_SECONDS,
                "clock check",
                lambda: database_time.measure(db),
                stopping,
                health,
            )
        if options.prune_seconds is not None:
            loops["prune"] = functools.partial(
                every,
                options.prune_seconds,
                "prune",
                lambda: prune(db, manifest, now()),
                stopping,
                health,
            )
        notifier = None
        if notifying and (pings or notifier_mod.urls(manifest)[0]):
            notifier = await stack.enter_async_context(
                notifier_mod.open_notifier(
                    db=db,
                    manifest=manifest,
                    book=book,
                    pings=pings or None,
                    environ=env,
                    health=health,
                    timeout=options.notify_timeout_seconds,
                    policy=outbox.policy(
                        tries=options.notify_tries,
                        first_delay_seconds=options.notify_first_delay_seconds,
                    ),
                    wake=wake.set,
                    count=prom.notified,
                )
            )
            _notify_loops(loops, notifier, options, now, stopping, health, wake)
        port = None
        if options.metrics_port is not None:
            server = await stack.enter_async_context(
                observe.http_endpoint(prom, options.metrics_port, options.metrics_host)
            )
            port = observe.bound_port(server)
            loops["gauges"] = functools.partial(
                every,
                options.metrics_refresh_seconds,
                "metrics refresh",
                lambda: observe.refresh(prom, book, manifest.queue.name, depth, now()),
                stopping,
                health,
            )

        if options.ui_port is not None:
            from engine.app.console.server import open_console

            await stack.enter_async_context(
                open_console(
                    manifest,
                    db,
                    port=options.ui_port,
                    host=options.ui_host,
                    transport=options.transport,
                    grace=options.grace,
                    environ=env,
                    clock=now,
                )
            )

        def stop() -> None:
            consumer.stop()
            if scheduler is not None:
                scheduler.stop()
            stopping.set()

        tasks = {asyncio.create_task(loop()): name for name, loop in loops.items()}

        def died(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("the %s stopped: %s; stopping", tasks[task], task.exception())
                stop()

        for task in tasks:
            task.add_done_callback(died)
        try:
            with stop_on_signals(stop) if handle_signals else nullcontext():
                if started is not None:
                    started(port)
                if client is not None:
                    tally: Tally = await consumer.run(max_batches=options.max_batches)
                else:
                    tally = await consumer.run()
        finally:
            stop()
            _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT) if tasks else ((), ())
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
            if notifier is not None:  # the last runs' pings: the next start sends them
                try:
                    await notifier.flush()
                except Exception as err:
                    health.failed("recording pings", err)
        for task, name in tasks.items():
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                log.debug("the %s stopped", name, exc_info=exc)
                raise ServiceFailed(f"the {name} stopped: {type(exc).__name__}: {exc}") from exc
        return tally


def _notify_loops(
    loops: dict[str, Callable[[], Coroutine[Any, Any, None]]],
    notifier: notifier_mod.Notifier,
    options: Options,
    now: Clock,
    stopping: asyncio.Event,
    health: Health,
    wake: asyncio.Event,
) -> None:
    seconds = options.notify_seconds or 0.0
    if notifier.scans:
        loops["notification scan"] = functools.partial(
            every, seconds, "notification scan", lambda: notifier.scan_once(now()), stopping, health
        )
    loops["notification send"] = functools.partial(
        every, seconds, "notification send", notifier.send_once, stopping, health, wake=wake
    )


def _consumers(manifest: Manifest, options: Options) -> int:
    if options.consumers is not None:
        return options.consumers
    if options.transport == "postgres":
        return 4
    consumer = manifest.queue.consumer
    return consumer.max_concurrency or consumer.max_batch_size


async def prune(db: Db, manifest: Manifest, now: datetime) -> None:
    """One pass of the retention prune (:mod:`engine.runtime.retention`)."""
    pruned = await retention.prune(db, manifest, now)
    if pruned.runs or pruned.dead_letters or pruned.notifications:
        log.info(
            "pruned %d superseded runs, %d dead letters and %d notifications sent or given up",
            pruned.runs,
            pruned.dead_letters,
            pruned.notifications,
        )
