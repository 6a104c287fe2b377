"""``cronwright consume``: the pull consumer wired to Postgres, R2 and the Cloudflare
Queues API from the environment, with dead letters going to both stores and, when asked,
a reconciler beside it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager, nullcontext
from typing import Any

from engine.adapters import cfqueue
from engine.app import housekeeping, observe, wiring
from engine.app.consumer import PullConsumer, Tally
from engine.core.errors import ConfigError, JobFailed
from engine.core.model import ConsumerType, Manifest
from engine.core.times import Clock, Sleep, iso
from engine.runtime.budget import Budget
from engine.runtime.deadletters import DeadLetter, DeadLetterSink, PgDeadLetters
from engine.runtime.metrics import JsonLines, MetricsSink

log = logging.getLogger(__name__)


def dlq_body(letter: DeadLetter) -> dict[str, Any]:
    """The original body (a JSON object) plus ``deadLetter``; any other body is kept as
    text under ``body``."""
    meta = {
        "reason": letter.reason,
        "errorClass": letter.error_class,
        "attempts": letter.attempts,
        "job": letter.job,
        "slot": iso(letter.slot) if letter.slot else None,
        "messageId": letter.message_id,
    }
    try:
        original = json.loads(letter.body)
    except json.JSONDecodeError:
        original = None
    if isinstance(original, dict):
        return {**original, "deadLetter": meta}
    return {"body": letter.body, "deadLetter": meta}


class QueueDeadLetters:
    """Dead letters to ``cronwright.dead_letters``, then a copy to the Cloudflare DLQ.

    Postgres goes first, the record of truth: when it fails nothing is sent and the
    redelivery retries both, so the DLQ never holds a letter without its row. A failed
    DLQ send after the row is written is logged, not retried: redelivering would run the
    job again for a copy."""

    def __init__(self, pg: DeadLetterSink, client: cfqueue.QueuesClient, dlq_id: str) -> None:
        self._pg = pg
        self._client = client
        self._dlq_id = dlq_id

    async def put(self, letter: DeadLetter) -> None:
        await self._pg.put(letter)
        try:
            await self._client.send(self._dlq_id, dlq_body(letter))
        except JobFailed as err:
            log.error("dead letter of message %s not sent to the DLQ: %s", letter.message_id, err)


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call ``stop`` once; a second signal has its default effect."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def handler(sig: signal.Signals) -> None:
        log.warning("%s: finishing the batch, then stopping", sig.name)
        for s in signals:
            loop.remove_signal_handler(s)
        stop()

    for s in signals:
        loop.add_signal_handler(s, handler, s)
    try:
        yield
    finally:
        for s in signals:
            loop.remove_signal_handler(s)


async def consume(
    manifest: Manifest,
    *,
    max_batches: int | None = None,
    concurrency: int | None = None,
    reconcile_interval: float | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    prune_interval: float | None = housekeeping.DAY_SECONDS,
    environ: Mapping[str, str] | None = None,
    metrics: MetricsSink | None = None,
    clock: Clock = wiring.utc_now,
    rng: random.Random | None = None,
    sleep: Sleep | None = None,
    handle_signals: bool = True,
) -> Tally:
    """``cronwright consume``: pull the manifest's queue with DATABASE_URL, CLOUDFLARE_*
    and R2_* from the environment. With ``reconcile_interval`` a reconciler runs beside
    it (:mod:`engine.app.reconciler`); with ``metrics_port`` Prometheus metrics and
    ``/healthz`` are served there; the manifest's retention is applied daily."""
    queue = manifest.queue
    if queue.consumer.type is not ConsumerType.HTTP_PULL:
        raise ConfigError(
            f"queue {queue.name} is consumed by the Worker (queue.consumer.type: "
            f"{queue.consumer.type}), so nothing may pull it",
            hint="set queue.consumer.type: http_pull and run generated/preflight.sh to pull",
        )
    env = os.environ if environ is None else environ
    settings = cfqueue.Settings.from_env(env)
    dsn = wiring.database_url(env)
    templates = wiring.load_templates(manifest)
    size = concurrency or queue.consumer.max_concurrency or queue.consumer.max_batch_size
    async with cfqueue.QueuesClient(settings, max_connections=size + 4) as client:
        ids = await client.queue_ids([queue.name, queue.dead_letter_queue])
        async with (
            wiring.open_database(dsn, max_size=size + 3) as db,
            wiring.open_actions(manifest, env, clock=clock) as actions,
            AsyncExitStack() as stack,
        ):
            dead_letters = QueueDeadLetters(PgDeadLetters(db), client, ids[queue.dead_letter_queue])
            prom = observe.Metrics(manifest, forward=metrics or JsonLines(sys.stderr))
            executor = wiring.build_executor(
                db,
                manifest,
                templates=templates,
                actions=actions,
                metrics=prom,
                dead_letters=dead_letters,
                clock=clock,
                rng=rng,
            )
            consumer = PullConsumer(
                client=client,
                executor=executor,
                queue_id=ids[queue.name],
                settings=queue.consumer,
                budget=Budget(db, queue.name, manifest.consumer_max_retries + 1),
                dead_letters=dead_letters,
                concurrency=size,
                clock=clock,
                sleep=sleep,
            )
            stop = asyncio.Event()
            loops: list[Coroutine[Any, Any, None]] = []
            if prune_interval is not None:
                loops.append(housekeeping.prune_daily(db, manifest, clock, stop, prune_interval))
            if reconcile_interval is not None:
                from engine.adapters.cfsender import CloudflareSender
                from engine.app.reconciler import Reconciler

                sender = CloudflareSender(client, ids[queue.name])
                reconciler = Reconciler(db, manifest, sender, clock=clock, environ=env)
                loops.append(reconciler.run_forever(stop, reconcile_interval))
            if metrics_port is not None:
                server = await stack.enter_async_context(
                    observe.http_endpoint(prom, metrics_port, metrics_host)
                )
                log.info("metrics on %s:%d/metrics", metrics_host, observe.bound_port(server))

                async def backlog() -> Mapping[str, int | None]:
                    return {"backlog": client.backlog.get(ids[queue.name])}

                loops.append(
                    observe.refresh_every(
                        15.0, prom, db, queue.name, backlog, manifest, clock, stop
                    )
                )
            tasks = [asyncio.create_task(loop) for loop in loops]
            try:
                with stop_on_signals(consumer.stop) if handle_signals else nullcontext():
                    return await consumer.run(max_batches=max_batches)
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
