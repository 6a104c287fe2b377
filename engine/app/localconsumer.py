"""The local consumer: N workers in one process run messages of the Postgres queue
(``cronwright.queue``) through the shared executor, each message as soon as a worker is
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
extending them, and its messages come back when their leases run out. Leases and
visibility are the database's time, and so is the "now" a slot is checked against: a
host whose clock is off can neither steal nor starve (:mod:`engine.adapters.pgqueue`).

Nothing a message holds stops a worker: the executor turns every message into an
outcome, and whatever still escapes it (the database gone mid-write) hands the message
back. A claim, ack or heartbeat that fails is reported to :class:`Health` and tried again.

``stop()`` (SIGTERM) stops taking work, lets running messages finish within the drain
period, then cancels the rest, whose transactions roll back, and releases them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass

from engine.adapters.pgqueue import Delivery, PgQueue
from engine.app.health import Health
from engine.app.tally import Tally
from engine.core.errors import NotMigrated
from engine.runtime import shield
from engine.runtime.executor import Executor
from engine.runtime.outcome import DONE

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    consumers: int = 4
    lease_seconds: float = 60.0  # in the queue's clock's seconds, like every queue time
    heartbeat_seconds: float = 20.0  # real seconds between lease extensions
    drain_seconds: float = 30.0  # real seconds running messages get after stop()
    retry_delay_seconds: float = 30.0  # for a delivery the executor could not take
    idle_seconds: float = 1.0  # the longest wait for work when no NOTIFY comes
    prefetch: int | None = None  # messages claimed ahead (default: 8x the consumers)
    write_timeout: float = 30.0


class LocalConsumer:
    def __init__(
        self,
        *,
        queue: PgQueue,
        executor: Executor,
        settings: LocalSettings,
        health: Health | None = None,
        max_messages: int | None = None,
    ) -> None:
        self._health = health or Health()
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
                _, late = await asyncio.wait(workers, timeout=s.drain_seconds)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late)
                    log.warning("drain period over: %d running messages cancelled", len(late))
                if self._ahead is not None:
                    # A claim under way: let it land, so that what it leased is released.
                    await asyncio.wait([self._ahead], timeout=s.write_timeout)
                # Claimed and not started, or cancelled mid-run: back to the queue now.
                stranded = list(self._held.values())
                if stranded:
                    try:
                        await shield.finish(self._queue.release(stranded), s.write_timeout)
                    except Exception as err:  # the leases lapse instead
                        self._health.failed("release at stop", err)
                    else:
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
        """A worker that failed for good (a bug: messages and the database's errors do
        not get here) stops the rest; ``run`` raises its error."""
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
            except NotMigrated:
                raise  # the queue itself is gone: nothing to wait for
            except Exception as err:  # the database away: the workers idle, then claim again
                self._health.failed("claim", err)
                return
            self._health.ok()
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
                d.body,
                message_id=d.message_id,
                attempt=d.attempts,
                ack=self._queue.ack_in(d),
                now=d.claimed_at,
            )
        except NotMigrated:
            raise  # no message can run on this database: stop; the message is released
        except Exception as err:  # the executor could not even record an outcome
            self._health.failed(f"message {d.message_id}", err)
            self.tally.errors += 1
            await self._settle(
                self._queue.retry(d, self._settings.retry_delay_seconds, handback=True)
            )
            return
        self.tally.statuses[outcome.status] += 1
        if outcome.status == "retry":
            delay = outcome.delay_seconds or 0.0
            await self._settle(self._queue.retry(d, delay, handback=outcome.handback))
        elif outcome.status not in DONE:  # dead_lettered: its letter is written; ack it
            await self._settle(self._queue.ack(d))

    async def _settle(self, write: Awaitable[None]) -> None:
        """An ack or retry outside the job's transaction. If it fails the lease runs
        out and the message comes back: the ledger makes that a duplicate."""
        try:
            await shield.finish(write, self._settings.write_timeout)
        except Exception as err:  # the message comes back when its lease ends
            self._health.failed("queue update", err)

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
        except Exception as err:  # the leases lapse instead
            self._health.failed("release", err)

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
            except Exception as err:
                self._health.failed("lease extension", err)
