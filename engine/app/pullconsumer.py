"""The pull consumer: Cloudflare Queues, pulled over the REST API -> the executor -> acks
as runs finish.

It keeps up to ``concurrency`` messages running: each pull asks for at most the free
room, each message runs as its own task, and whatever finishes is acknowledged at once,
in small groups (succeeded, duplicate and dead_lettered are acked; retry goes back with
the executor's delay). A 30-minute job therefore holds nothing behind it: short messages
pulled with it are acked as soon as they are done, and pulling goes on while it runs.
Each message's lease starts at its pull and it starts running at once, so each lease
only has to outlast its own run. Runs of one job still serialise on its advisory lock.

Hand-backs and Cloudflare's delivery count are reconciled by
:mod:`engine.runtime.budget`; on the last delivery Cloudflare allows, the executor is told
so, and dead-letters (record first, then the DLQ copy) what it would otherwise hand back.
A message whose lease lapses (a crash before the ack) is redelivered by Cloudflare and
the run ledger makes it a duplicate. Nothing a message holds stops the consumer: whatever
escapes the executor hands the message back. SIGTERM/SIGINT stop pulling, let the runs
in flight finish, ack them and return.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Protocol

from engine.adapters import cfqueue
from engine.app.health import Health
from engine.app.tally import Tally
from engine.core.errors import JobFailed, NotMigrated
from engine.core.model import Consumer
from engine.core.times import Sleep
from engine.runtime import messages, shield
from engine.runtime.budget import DeliveryBudget
from engine.runtime.messages import Body
from engine.runtime.outcome import Outcome

log = logging.getLogger(__name__)


class Handler(Protocol):
    async def handle(
        self, body: Body, *, message_id: str, attempt: int, last_delivery: str | None = None
    ) -> Outcome: ...


@dataclass(frozen=True)
class _Done:
    message: cfqueue.Pulled
    delay: int | None  # None: ack; else hand back after this many seconds


class PullConsumer:
    def __init__(
        self,
        *,
        client: cfqueue.QueuesClient,
        executor: Handler,
        queue_id: str,
        settings: Consumer,
        budget: DeliveryBudget | None = None,
        concurrency: int | None = None,
        health: Health | None = None,
        sleep: Sleep | None = None,
        idle_seconds: tuple[float, float] = (1.0, 30.0),
        ack_timeout: float = 120.0,
        write_timeout: float = 30.0,
    ) -> None:
        self._client = client
        self._executor = executor
        self._queue_id = queue_id
        self._settings = settings
        self._budget = budget
        self._concurrency = concurrency or settings.max_concurrency or settings.max_batch_size
        self._health = health or Health()
        self._stop = asyncio.Event()
        self._sleep = sleep or self._until_stopped
        self._idle_min, self._idle_max = idle_seconds
        self._ack_timeout = ack_timeout
        self._write_timeout = write_timeout

    def stop(self) -> None:
        """Stop pulling, let the runs in flight finish, ack them, and return from ``run``."""
        self._stop.set()

    async def run(self, *, max_batches: int | None = None) -> Tally:
        """Pull until stopped, or ``max_batches`` pulls. A service (no bound) rides out
        transient API errors; a bounded run raises them (after its runs finish)."""
        tally = Tally()
        idle = self._idle_min
        running: set[asyncio.Task[_Done]] = set()
        try:
            while True:
                pulling = not self._stop.is_set() and (
                    max_batches is None or tally.batches < max_batches
                )
                room = self._concurrency - len(running)
                pulled = 0
                if pulling and room > 0:
                    size = min(room, self._settings.max_batch_size)
                    for m in await self._pull(size, tally, bounded=max_batches is not None):
                        running.add(asyncio.create_task(self._one(m, tally)))
                        pulled += 1
                    idle = self._idle_min if pulled else idle
                if not running:
                    if not pulling:
                        return tally
                    if max_batches is None or tally.batches < max_batches:
                        await self._sleep(idle)
                        idle = min(idle * 2, self._idle_max)
                    continue
                # Ack what finishes. With room left, pull again: at once after a pull
                # that brought messages, after the (growing) idle wait after an empty one.
                more = pulling and len(running) < self._concurrency
                timeout = (0 if pulled else idle) if more else None
                done, _ = await asyncio.wait(
                    running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if more and not pulled and not done:  # an idle queue beside a long run
                    idle = min(idle * 2, self._idle_max)
                running -= done
                await self._ack([t.result() for t in done], tally)
        except asyncio.CancelledError:
            for t in running:
                t.cancel()
            raise
        finally:
            if running:  # an error or a cancellation: what was handled is still acked
                done, _ = await asyncio.wait(running)
                await self._ack([t.result() for t in done if not t.cancelled()], tally)

    async def _pull(self, size: int, tally: Tally, *, bounded: bool) -> list[cfqueue.Pulled]:
        try:
            pulled = await self._client.pull(
                self._queue_id,
                batch_size=size,
                visibility_timeout_ms=self._settings.visibility_timeout_seconds * 1000,
            )
        except JobFailed as err:
            if not err.transient or bounded:
                raise
            self._health.failed("pull", err)
            return []
        self._health.ok("Cloudflare Queues API")
        tally.batches += 1
        return pulled

    async def _one(self, m: cfqueue.Pulled, tally: Tally) -> _Done:
        budget = self._budget
        raised = False
        last = None
        if budget is not None and budget.last(m.attempts):
            n = budget.deliveries
            last = f"delivery {m.attempts} of the {n} the queue allows ended in a retry"
        try:
            attempt = await budget.job_attempt(m.id, m.attempts) if budget else m.attempts
            outcome = await self._executor.handle(
                m.body, message_id=m.id, attempt=attempt, last_delivery=last
            )
        except NotMigrated:
            raise  # no message can run on this database: stop, the message comes back
        except Exception as err:  # the executor could not even record an outcome
            self._health.failed(f"message {m.id}", err)
            raised = True
            outcome = Outcome(
                status="retry",
                job=None,
                type=messages.peek_type(m.body),
                slot=None,
                attempt=m.attempts,
                delay_seconds=self._settings.retry_delay_seconds,
                error_class=getattr(err, "error_class", "not_handled"),
                reason=str(err),
                handback=True,
            )
        if outcome.status != "retry":
            tally.statuses[outcome.status] += 1
            return _Done(m, None)
        if last is not None:
            # Handed back, Cloudflare moves it to its DLQ without our record: the record
            # (the dead letter) could not be written.
            log.error(
                "message %s leaves for the DLQ without its dead letter row: %s",
                m.id,
                outcome.reason,
            )
        if raised:
            tally.errors += 1
        else:
            tally.statuses["retry"] += 1
        if outcome.handback and budget is not None:
            try:
                await budget.handed_back(m.id)
            except Exception as err:
                self._health.failed("hand-back count", err)
        return _Done(m, math.ceil(outcome.delay_seconds or 0))

    async def _ack(self, done: list[_Done], tally: Tally) -> None:
        acks = [d.message.lease_id for d in done if d.delay is None]
        retries = [(d.message.lease_id, d.delay) for d in done if d.delay is not None]
        if not acks and not retries:
            return
        # The client bounds the call (timeouts, retries); shielding it lets a cancelled
        # consumer still deliver the acks of work it has done.
        try:
            result = await shield.finish(
                self._client.ack(self._queue_id, acks=acks, retries=retries), self._ack_timeout
            )
        except Exception as err:  # the leases lapse and the messages are redelivered
            tally.ack_failures += 1
            self._health.failed("ack call", err)
            return
        for lease, warning in sorted(result.warnings.items()):
            log.warning("ack of lease %s: %s", lease, warning)
        if self._budget is not None:
            redelivered = [d.message.id for d in done if d.delay is None and d.message.attempts > 1]
            try:
                await self._budget.forget(redelivered)
            except Exception as err:
                self._health.failed("hand-back cleanup", err)

    async def _until_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return
