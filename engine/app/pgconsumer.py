"""The Postgres-queue consumer: N workers in one process run messages of
``cronwright.queue`` through the shared executor, each message as soon as a worker is
free. The consumer keeps up to 8N messages claimed ahead (``prefetch``): one claim
round trip leases several, and the next claim starts in the background once half of them
have been taken, so a worker seldom waits for one. A message claimed ahead that has
waited through a whole heartbeat period (every worker busy with a long run) goes back to
the queue for other consumers: a long job holds a short one behind it for at most two
heartbeats.

Each outcome settles its message like Cloudflare Queues would: succeeded and duplicate
are acked inside the job's own transaction (so a local run is exactly-once without the
duplicate check), dead_lettered is acked once its dead letter is written, retry comes back
after the executor's delay with one more attempt (a hand-back keeps its attempt count).
A heartbeat extends the leases of running messages; a consumer killed outright stops
extending them, and its messages come back when their leases run out.

``stop()`` (SIGTERM) stops taking work, lets running messages finish within the grace
period, then cancels the rest, whose transactions roll back, and releases them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Awaitable
from dataclasses import dataclass, field

from engine.adapters.pgqueue import Delivery, PgQueue
from engine.core.errors import CronwrightError, JobFailed, NotMigrated
from engine.runtime import shield
from engine.runtime.executor import Executor
from engine.runtime.outcome import STATUSES

log = logging.getLogger(__name__)

# The outcomes whose transaction committed the ack with the ledger row.
_ACKED_IN_TX = frozenset({"succeeded", "duplicate", "paused"})


@dataclass(frozen=True, kw_only=True)
class Settings:
    consumers: int = 4
    lease_seconds: float = 60.0  # in the injected clock's seconds, like every queue time
    heartbeat_seconds: float = 20.0  # real seconds between lease extensions
    grace_seconds: float = 30.0  # real seconds running messages get after stop()
    retry_delay_seconds: float = 30.0  # for a delivery the executor raised on
    idle_seconds: float = 1.0  # the longest wait for work when no NOTIFY comes
    prefetch: int | None = None  # messages claimed ahead (default: 8x the consumers)
    write_timeout: float = 30.0


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0  # deliveries the executor raised on (handed back)
    released: int = 0  # deliveries given back at stop

    def summary(self) -> str:
        total = sum(self.statuses.values()) + self.errors
        counts = ", ".join(f"{s} {self.statuses[s]}" for s in STATUSES)
        text = f"{total} message{'s' * (total != 1)}: {counts}"
        if self.errors:
            text += f", not handled {self.errors}"
        if self.released:
            text += f", released at stop {self.released}"
        return text


class LocalConsumer:
    def __init__(
        self,
        *,
        queue: PgQueue,
        executor: Executor,
        settings: Settings,
        max_messages: int | None = None,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self._settings = settings
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._held: dict[int, Delivery] = {}  # leased by us: buffered or running
        self._buffer: deque[Delivery] = deque()
        self._claiming = asyncio.Lock()
        self._ahead: asyncio.Task[None] | None = None  # a claim started in the background
        self._left = max_messages
        self._prefetch = settings.prefetch or 8 * settings.consumers
        self.tally = Tally()

    def stop(self) -> None:
        """Take no more work; ``run`` returns once running messages are settled."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Work may be waiting (a NOTIFY)."""
        self._wake.set()

    async def run(self) -> Tally:
        s = self._settings
        async with self._queue.listening(self.wake):
            workers = [asyncio.create_task(self._worker()) for _ in range(s.consumers)]
            for task in workers:
                task.add_done_callback(self._stop_if_failed)
            beat = asyncio.create_task(self._heartbeat())
            try:
                await self._stop.wait()
                _, late = await asyncio.wait(workers, timeout=s.grace_seconds)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late)
                    log.warning("grace period over: %d running messages cancelled", len(late))
                if self._ahead is not None:
                    # A claim under way: let it land, so that what it leased is released.
                    await asyncio.wait([self._ahead], timeout=s.write_timeout)
                # Claimed and not started, or cancelled mid-run: back to the queue now.
                stranded = list(self._held.values())
                if stranded:
                    await shield.finish(self._queue.release(stranded), s.write_timeout)
                    self.tally.released += len(stranded)
            finally:
                ahead = [self._ahead] if self._ahead is not None else []
                for task in [beat, *workers, *ahead]:
                    task.cancel()
                await asyncio.wait([beat, *workers, *ahead])
        for task in [*workers, *ahead]:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return self.tally

    def _stop_if_failed(self, task: asyncio.Task[None]) -> None:
        """A worker that failed for good stops the rest; ``run`` raises its error."""
        if not task.cancelled() and task.exception() is not None:
            self.stop()

    async def _worker(self) -> None:
        async with self._queue.pinned():  # one connection per worker, not one per job
            await self._work()

    async def _work(self) -> None:
        while not self._stop.is_set():
            delivery = await self._next()
            if delivery is None:
                if self._left == 0:
                    self.stop()
                    return
                await self._idle()
                continue
            await self._one(delivery)
            del self._held[delivery.id]

    async def _next(self) -> Delivery | None:
        """The next claimed message; one claim fetches work for several workers."""
        if not self._buffer:
            await self._claim()
        if not self._buffer or self._stop.is_set():
            return None
        delivery = self._buffer.popleft()
        self._claim_ahead()
        return delivery

    def _claim_ahead(self) -> None:
        """Once half the claimed messages are taken, claim more while the workers run."""
        ahead = self._ahead
        if ahead is not None and not ahead.done():
            return
        if self._stop.is_set() or self._left == 0:
            return
        if self._half_empty():
            self._ahead = asyncio.create_task(self._claim())
            self._ahead.add_done_callback(self._stop_if_failed)

    def _half_empty(self) -> bool:
        """At most half the prefetch left claimed ahead: time to claim more."""
        return 2 * len(self._buffer) <= self._prefetch

    async def _claim(self) -> None:
        """Fill the buffer up to ``prefetch`` messages (one claim round trip)."""
        async with self._claiming:
            # Workers that found the buffer empty wait here while one of them claims: once
            # that claim has filled it, the others take from it instead of each claiming
            # the few messages still missing.
            if not self._half_empty():
                return
            n = self._prefetch - len(self._buffer)
            if self._left is not None:
                n = min(n, self._left)
            if n <= 0 or self._stop.is_set():
                return
            try:
                claimed = await self._queue.claim(n, lease_seconds=self._settings.lease_seconds)
            except JobFailed as err:
                if not err.transient:
                    raise
                log.warning("claim failed: %s", err)
                return
            if self._left is not None:
                self._left -= len(claimed)
            self._held.update((d.id, d) for d in claimed)
            self._buffer.extend(claimed)

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._settings.idle_seconds)

    async def _one(self, d: Delivery) -> None:
        try:
            outcome = await self._executor.handle(
                d.body, message_id=d.message_id, attempt=d.attempts, ack=self._queue.ack_in(d)
            )
        except NotMigrated:
            raise  # no message can run on this database: stop; the message is released
        except CronwrightError as err:
            log.error("message %s not handled: %s; handing it back", d.message_id, err)
            self.tally.errors += 1
            await self._settle(
                self._queue.retry(d, self._settings.retry_delay_seconds, handback=False)
            )
            return
        self.tally.statuses[outcome.status] += 1
        if outcome.status == "retry":
            delay = outcome.delay_seconds or 0.0
            await self._settle(self._queue.retry(d, delay, handback=outcome.handback))
        elif outcome.status not in _ACKED_IN_TX:  # dead_lettered: its letter is written
            await self._settle(self._queue.ack(d))

    async def _settle(self, write: Awaitable[None]) -> None:
        """An ack or retry outside the job's transaction. If it fails the lease runs
        out and the message comes back: the ledger makes that a duplicate."""
        try:
            await shield.finish(write, self._settings.write_timeout)
        except JobFailed as err:
            log.error("queue update failed: %s; the message comes back when its lease ends", err)

    async def _release_waiting(self, waiting: set[int]) -> None:
        """Messages claimed ahead that no worker has started for a whole heartbeat (every
        worker busy with a long run) go back to the queue, for other consumers to run."""
        stale = [d for d in self._buffer if d.id in waiting]
        if not stale:
            return
        for d in stale:
            self._buffer.remove(d)
            del self._held[d.id]
        if self._left is not None:
            self._left += len(stale)
        try:
            await self._queue.release(stale)
        except JobFailed as err:
            log.warning("release failed: %s; the leases will lapse", err)

    async def _heartbeat(self) -> None:
        s = self._settings
        waiting: set[int] = set()  # claimed ahead and not started at the last beat
        while True:
            await asyncio.sleep(s.heartbeat_seconds)
            await self._release_waiting(waiting)
            waiting = {d.id for d in self._buffer}
            running = list(self._held.values())
            try:
                await self._queue.extend(running, lease_seconds=s.lease_seconds)
            except JobFailed as err:
                log.warning("lease extension failed: %s", err)
