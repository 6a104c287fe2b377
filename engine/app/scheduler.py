"""The local scheduler: the Worker's ``scheduled()`` for running without Cloudflare.

At each minute any job fires, while the cron flag is on (:func:`cron_enabled`, the
Worker's reading), it dispatches the due slots of every job that is not paused (manifest
``paused: true``) through :func:`engine.runtime.dispatch.dispatch`, whose claim skips a
slot inside a runtime pause and makes each slot enqueued once however many schedulers
run: on the Postgres queue, one statement per 1,000 slots. It wakes when the next slot
of any job comes due, computed once per distinct schedule. Slots that passed while it
was not running (or the flag was off) are the reconciler's: with this scheduler recording
every slot it sends, the reconciler counts an unsent due slot as missing at once, so
after a restart it fills the gap on its first pass. Given the reconciler's book, it
tells it what each tick sent (every slot given to a dispatch is claimed, found claimed
or paused: closed), so that the reconciler's passes ask only about the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from engine.app.health import Health
from engine.core.model import Job, Manifest
from engine.core.times import Clock, Sleep
from engine.runtime.dispatch import Sender, Slot, dispatch
from engine.runtime.ports import Db, SlotStore
from engine.runtime.scheduling import cron_enabled
from engine.runtime.slotbook import SlotBook
from engine.schedule.slots import Schedule, cron_schedule, schedule_key, slots_from

log = logging.getLogger(__name__)
_TICK = timedelta(microseconds=1)  # (after, until] is [next slot, until + _TICK)


class Scheduler:
    def __init__(
        self,
        *,
        db: Db,
        store: SlotStore,
        manifest: Manifest,
        sender: Sender,
        clock: Clock,
        sleep: Sleep,
        environ: Mapping[str, str],
        health: Health | None = None,
        book: SlotBook | None = None,
    ) -> None:
        self._db = db
        self._book = book  # told what each tick sent (a reconciler refreshes it)
        self._store = store
        self._sender = sender
        self._clock = clock
        self._sleep = sleep
        self._health = health or Health()
        self._enabled = cron_enabled(manifest, environ)
        self._jobs = [j for j in manifest.jobs if not j.paused]
        groups: dict[object, tuple[Schedule, list[Job]]] = {}
        for job in self._jobs:
            key = schedule_key(job)
            if key not in groups:
                groups[key] = (cron_schedule(job), [])
            groups[key][1].append(job)
        self._groups = list(groups.values())
        self._stop = asyncio.Event()
        self.enqueued = 0

    @property
    def enabled(self) -> bool:
        """The cron flag, read when the scheduler was built."""
        return self._enabled

    def stop(self) -> None:
        self._stop.set()

    def due_between(self, after: datetime, until: datetime) -> list[Slot]:
        """Every slot in ``(after, until]`` of the scheduled jobs, oldest first."""
        found = []
        for schedule, jobs in self._groups:
            slots, _ = slots_from(schedule, schedule.next_after(after), until + _TICK)
            found += [Slot(job, t) for t in slots for job in jobs]
        return sorted(found, key=lambda s: (s.slot, s.job.name))

    async def tick(self, after: datetime, until: datetime) -> list[Slot]:
        """Dispatch the slots due in ``(after, until]`` (the claim skips those inside a
        runtime pause); returns those this call sent."""
        due = self.due_between(after, until)
        if not due or not self._enabled:
            return []
        sent = await dispatch(self._db, self._sender, due, source="scheduler")
        self.enqueued += len(sent)
        if self._book is not None:
            await self._book.closed((s.job, s.slot) for s in due)
        return sent

    def _next_due(self, after: datetime) -> datetime | None:
        due = [t for s, _ in self._groups if (t := s.next_after(after)) is not None]
        return min(due, default=None)

    async def run(self) -> None:
        """Tick at every slot minute until stopped. A failed tick (the database away) is
        reported and tried again a second later, from where it left off."""
        if not self._enabled:
            log.warning("the cron flag is off: the scheduler enqueues nothing")
        last = self._clock()
        await self._register(last)
        while not self._stop.is_set():
            due = self._next_due(last)
            if due is None:
                return
            wait = (due - self._clock()).total_seconds()
            if wait > 0:
                await self._sleep_unless_stopped(wait)
                continue
            now = self._clock()
            try:
                await self.tick(last, now)
            except Exception as err:
                self._health.failed("scheduler tick", err)
                await self._sleep_unless_stopped(1.0)
                continue
            self._health.ok()
            last = now

    async def _register(self, now: datetime) -> None:
        """Record the jobs as seen (their history starts now), retrying while the
        database is away."""
        while not self._stop.is_set():
            try:
                await self._store.register([j.name for j in self._jobs], now)
                return
            except Exception as err:
                self._health.failed("scheduler start", err)
                await self._sleep_unless_stopped(1.0)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        stop = asyncio.create_task(self._stop.wait())
        nap = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait([stop, nap], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, nap):
                task.cancel()
            await asyncio.wait([stop, nap])
