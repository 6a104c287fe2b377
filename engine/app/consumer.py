"""The HTTP pull consumer: Cloudflare Queues -> the executor -> acks as runs finish.

It keeps up to ``concurrency`` messages running: each pull asks for at most the free
room, each message runs as its own task, and whatever finishes is acknowledged at once,
in small groups (succeeded, duplicate and dead_lettered are acked; retry goes back with
the executor's delay). A 30-minute job therefore holds nothing behind it: short messages
pulled with it are acked as soon as they are done, and pulling goes on while it runs.
Each message's lease starts at its pull and it starts running at once, so each lease
only has to outlast its own run. Runs of one job still serialise on its advisory lock.

Hand-backs and Cloudflare's delivery count are reconciled by
:mod:`engine.runtime.budget`. A message whose lease lapses (a crash before the ack) is
redelivered by Cloudflare and the run ledger makes it a duplicate. SIGTERM/SIGINT stop
pulling, let the runs in flight finish, ack them and return.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from engine.adapters import cfqueue
from engine.app import lastdelivery
from engine.core.errors import CronwrightError, JobFailed, NotMigrated
from engine.core.model import Consumer
from engine.core.times import Clock, Sleep
from engine.runtime import messages, shield
from engine.runtime.budget import Budget
from engine.runtime.deadletters import DeadLetterSink
from engine.runtime.messages import Body
from engine.runtime.outcome import STATUSES, Outcome

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class _Done:
    message: cfqueue.Pulled
    delay: int | None  # None: ack; else hand back after this many seconds


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PullConsumer:
    def __init__(
        self,
        *,
        client: cfqueue.QueuesClient,
        executor: Handler,
        queue_id: str,
        settings: Consumer,
        budget: Budget | None = None,
        dead_letters: DeadLetterSink | None = None,
        concurrency: int | None = None,
        clock: Clock = _utc_now,
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
        self._dead_letters = dead_letters
        self._concurrency = concurrency or settings.max_concurrency or settings.max_batch_size
        self._clock = clock
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
            log.warning("pull failed: %s", err)
            return []
        tally.batches += 1
        return pulled

    async def _one(self, m: cfqueue.Pulled, tally: Tally) -> _Done:
        budget = self._budget
        raised = False
        try:
            attempt = await budget.job_attempt(m.id, m.attempts) if budget else m.attempts
            outcome = await self._executor.handle(m.body, message_id=m.id, attempt=attempt)
        except NotMigrated:
            raise  # no message can run on this database: stop, the message comes back
        except CronwrightError as err:
            log.error("message %s not handled: %s; handing it back", m.id, err)
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
        if budget is not None and budget.last(m.attempts) and await self._last_delivery(m, outcome):
            tally.statuses["dead_lettered"] += 1
            return _Done(m, None)
        if raised:
            tally.errors += 1
        else:
            tally.statuses["retry"] += 1
        if outcome.handback and budget is not None:
            try:
                await budget.handed_back(m.id)
            except JobFailed as err:
                log.error("hand-back of message %s not counted: %s", m.id, err)
        return _Done(m, math.ceil(outcome.delay_seconds or 0))

    async def _last_delivery(self, m: cfqueue.Pulled, outcome: Outcome) -> bool:
        """Dead-letter a last delivery ourselves (:mod:`engine.app.lastdelivery`); True
        when written."""
        assert self._budget is not None
        if self._dead_letters is None:
            return False
        return await lastdelivery.dead_letter(
            m,
            outcome,
            budget=self._budget,
            sink=self._dead_letters,
            clock=self._clock,
            write_timeout=self._write_timeout,
        )

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
        if self._budget is not None:
            redelivered = [d.message.id for d in done if d.delay is None and d.message.attempts > 1]
            try:
                await self._budget.forget(redelivered)
            except JobFailed as err:
                log.warning("hand-back counts of acked messages not removed: %s", err)

    async def _until_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return
