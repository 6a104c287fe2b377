"""The HTTP pull consumer: Cloudflare Queues -> the executor -> one ack call per batch.

Each round pulls up to ``max_batch_size`` messages leased for the consumer's visibility
timeout, hands each to ``Executor.handle`` and then acknowledges the batch in ONE call:
succeeded, duplicate and dead_lettered are acked (the executor has already written the dead
letter), retry goes back with the executor's delay. Messages of a batch run concurrently
(each lease starts at the pull, so each must only outlast its own run); runs of one job
still serialise on its advisory lock.
A message whose lease lapses (a crash before the ack) is redelivered by Cloudflare and
the run ledger makes it a duplicate. SIGTERM/SIGINT finish the batch, ack it and stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.adapters import cfqueue
from engine.app import wiring
from engine.core.errors import ConfigError, CronwrightError, JobFailed
from engine.core.model import Consumer, ConsumerType, Manifest
from engine.core.times import iso
from engine.runtime import shield
from engine.runtime.executor import Clock, Executor
from engine.runtime.ledger import DeadLetter, DeadLetterSink, PgDeadLetters
from engine.runtime.messages import Body
from engine.runtime.metrics import JsonLines, MetricsSink
from engine.runtime.outcome import STATUSES, Outcome

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Handler(Protocol):
    async def handle(self, body: Body, *, message_id: str, attempt: int) -> Outcome: ...


@dataclass
class Tally:
    """What a run of the consumer did."""

    batches: int = 0  # pulls, an empty one included
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0  # deliveries the executor raised on (handed back for redelivery)
    ack_failures: int = 0  # ack calls that failed (their leases lapse and redeliver)

    @property
    def ok(self) -> bool:
        """Every message acked or duplicate, and every ack call went through."""
        failed = self.statuses["retry"] + self.statuses["dead_lettered"]
        return failed == 0 and self.errors == 0 and self.ack_failures == 0

    def summary(self) -> str:
        total = sum(self.statuses.values()) + self.errors
        counts = ", ".join(f"{s} {self.statuses[s]}" for s in STATUSES)
        text = f"{total} message{'s' * (total != 1)} in {self.batches} pull"
        text += f"{'s' * (self.batches != 1)}: {counts}"
        if self.errors:
            text += f", not handled {self.errors}"
        if self.ack_failures:
            text += f", failed ack calls {self.ack_failures}"
        return text


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
    """Dead letters to the Cloudflare DLQ and to ``cronwright.dead_letters``.

    The DLQ send goes first: when it fails transiently nothing is written yet, and the
    redelivery retries both. A permanent refusal (a body over the size limit) is logged
    and the letter still reaches Postgres, the record of truth."""

    def __init__(self, pg: DeadLetterSink, client: cfqueue.QueuesClient, dlq_id: str) -> None:
        self._pg = pg
        self._client = client
        self._dlq_id = dlq_id

    async def put(self, letter: DeadLetter) -> None:
        try:
            await self._client.send(self._dlq_id, dlq_body(letter))
        except JobFailed as err:
            if err.transient:
                raise
            log.error("dead letter of message %s not sent to the DLQ: %s", letter.message_id, err)
        await self._pg.put(letter)


class PullConsumer:
    def __init__(
        self,
        *,
        client: cfqueue.QueuesClient,
        executor: Handler,
        queue_id: str,
        settings: Consumer,
        sleep: Sleep | None = None,
        idle_seconds: tuple[float, float] = (1.0, 30.0),
        ack_timeout: float = 120.0,
    ) -> None:
        self._client = client
        self._executor = executor
        self._queue_id = queue_id
        self._settings = settings
        self._stop = asyncio.Event()
        self._sleep = sleep or self._until_stopped
        self._idle_min, self._idle_max = idle_seconds
        self._ack_timeout = ack_timeout

    def stop(self) -> None:
        """Finish the current batch, ack it, and return from ``run``."""
        self._stop.set()

    async def run(self, *, max_batches: int | None = None) -> Tally:
        """Pull until stopped, or ``max_batches`` pulls. A service (no bound) rides out
        transient API errors; a bounded run raises them."""
        tally = Tally()
        idle = self._idle_min
        while not self._stop.is_set() and (max_batches is None or tally.batches < max_batches):
            try:
                pulled = await self.batch(tally)
            except JobFailed as err:
                if max_batches is not None or not err.transient:
                    raise
                log.warning("pull failed: %s", err)
                pulled = 0
            if pulled:
                idle = self._idle_min
            elif max_batches is None or tally.batches < max_batches:
                await self._sleep(idle)
                idle = min(idle * 2, self._idle_max)
        return tally

    async def batch(self, tally: Tally) -> int:
        """One pull, its messages, one ack call. Returns the number of messages."""
        messages = await self._client.pull(
            self._queue_id,
            batch_size=self._settings.max_batch_size,
            visibility_timeout_ms=self._settings.visibility_timeout_seconds * 1000,
        )
        tally.batches += 1
        delays: dict[str, int | None] = {}  # lease -> None (ack) or the retry delay

        async def one(m: cfqueue.Pulled) -> None:
            delay: int | None = None
            try:
                outcome = await self._executor.handle(m.body, message_id=m.id, attempt=m.attempts)
            except CronwrightError as err:
                log.error("message %s not handled: %s; handing it back", m.id, err)
                tally.errors += 1
                delay = self._settings.retry_delay_seconds
            else:
                tally.statuses[outcome.status] += 1
                if outcome.status == "retry":
                    delay = math.ceil(outcome.delay_seconds or 0)
            delays[m.lease_id] = delay

        try:
            # Concurrently: every message of a batch is leased at the pull, so run one
            # after another the last one's lease would have to outlast the whole batch.
            await asyncio.gather(*(one(m) for m in messages))
        finally:
            # Also on the way out of an error: what was handled is acked.
            acks = [lease for lease, d in delays.items() if d is None]
            retries = [(lease, d) for lease, d in delays.items() if d is not None]
            await self._ack(acks, retries, tally)
        return len(messages)

    async def _ack(self, acks: list[str], retries: list[tuple[str, int]], tally: Tally) -> None:
        if not acks and not retries:
            return
        # The client bounds the call (timeouts, retries); shielding it lets a cancelled
        # consumer still deliver the acks of work it has done.
        try:
            result = await shield.finish(
                self._client.ack(self._queue_id, acks=acks, retries=retries), self._ack_timeout
            )
        except JobFailed as err:
            tally.ack_failures += 1
            log.error(
                "ack call for %d acks and %d retries failed: %s; the leases lapse and the"
                " messages are redelivered",
                len(acks),
                len(retries),
                err,
            )
            return
        for lease, warning in sorted(result.warnings.items()):
            log.warning("ack of lease %s: %s", lease, warning)

    async def _until_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return


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
    environ: Mapping[str, str] | None = None,
    metrics: MetricsSink | None = None,
    clock: Clock = wiring.utc_now,
    rng: random.Random | None = None,
    sleep: Sleep | None = None,
    handle_signals: bool = True,
) -> Tally:
    """``cronwright consume``: pull the manifest's queue with DATABASE_URL, CLOUDFLARE_*
    and R2_* from the environment."""
    queue = manifest.queue
    if queue.consumer.type is not ConsumerType.HTTP_PULL:
        raise ConfigError(
            f"queue {queue.name} is consumed by the Worker (queue.consumer.type: "
            f"{queue.consumer.type}), so nothing may pull it",
            hint="set queue.consumer.type: http_pull and run generated/preflight.sh to pull",
        )
    env = os.environ if environ is None else environ
    client = cfqueue.QueuesClient(cfqueue.Settings.from_env(env))
    dsn = wiring.database_url(env)
    templates = wiring.load_templates(manifest)
    ids = await client.queue_ids([queue.name, queue.dead_letter_queue])
    async with (
        wiring.open_database(dsn, max_size=max(4, queue.consumer.max_batch_size)) as db,
        wiring.open_actions(manifest, env, clock=clock) as actions,
    ):
        executor = Executor(
            db=db,
            manifest=manifest,
            templates=templates,
            actions=actions,
            dead_letters=QueueDeadLetters(PgDeadLetters(db), client, ids[queue.dead_letter_queue]),
            metrics=metrics or JsonLines(sys.stderr),
            clock=clock,
            sleep=asyncio.sleep,
            rng=rng or random.Random(),
        )
        consumer = PullConsumer(
            client=client,
            executor=executor,
            queue_id=ids[queue.name],
            settings=queue.consumer,
            sleep=sleep,
        )
        with stop_on_signals(consumer.stop) if handle_signals else nullcontext():
            return await consumer.run(max_batches=max_batches)
