"""The local scheduler: the Worker's ``scheduled()`` for running without Cloudflare.

At each minute any job fires, while the cron flag is on, it dispatches the due slots of
every job that is not paused (manifest ``paused: true``) and whose slot is not inside a
runtime pause, through :func:`engine.runtime.dispatch.dispatch`. That claim makes each
slot enqueued once however many schedulers run. Each job's own schedule decides its
slots, not the trigger list. Slots that passed while the scheduler was not running (or
the flag was off) are the reconciler's business, not this loop's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from engine.core.errors import JobFailed
from engine.core.model import Job, Manifest
from engine.core.times import Clock, Sleep
from engine.runtime import pauses
from engine.runtime.dispatch import Sender, Slot, dispatch
from engine.runtime.ledger import Db
from engine.schedule.slots import Schedule, cron_schedule

log = logging.getLogger(__name__)


def cron_enabled(manifest: Manifest, environ: Mapping[str, str]) -> bool:
    """The Worker's check: the variable named by ``worker.cron_flag`` is "true". The
    environment overrides the manifest's default (``worker.cron_enabled``)."""
    value = environ.get(manifest.worker.cron_flag)
    if value is None:
        return manifest.worker.cron_enabled
    return value.strip().lower() == "true"


def due_between(
    schedules: Sequence[tuple[Schedule, Job]], after: datetime, until: datetime
) -> list[Slot]:
    """Every slot in ``(after, until]`` of the given jobs, oldest first."""
    found = []
    for schedule, job in schedules:
        t = schedule.next_after(after)
        while t is not None and t <= until:
            found.append(Slot(job, t))
            t = schedule.next_after(t)
    return sorted(found, key=lambda s: (s.slot, s.job.name))


class Scheduler:
    def __init__(
        self,
        *,
        db: Db,
        manifest: Manifest,
        sender: Sender,
        clock: Clock,
        sleep: Sleep,
        environ: Mapping[str, str],
    ) -> None:
        self._db = db
        self._sender = sender
        self._clock = clock
        self._sleep = sleep
        self._enabled = cron_enabled(manifest, environ)
        self._schedules = [(cron_schedule(j), j) for j in manifest.jobs if not j.paused]
        self._stop = asyncio.Event()
        self.enqueued = 0

    def stop(self) -> None:
        self._stop.set()

    async def tick(self, after: datetime, until: datetime) -> list[Slot]:
        """Dispatch the slots due in ``(after, until]``; returns those this call sent."""
        due = due_between(self._schedules, after, until)
        if not due or not self._enabled:
            return []
        async with self._db.transaction() as tx:
            paused = await pauses.overlapping(
                tx, sorted({s.job.name for s in due}), due[0].slot, until + timedelta(minutes=1)
            )
        if any(paused.values()):
            due = [s for s in due if not any(p.covers(s.slot) for p in paused[s.job.name])]
        sent = await dispatch(self._db, self._sender, due, source="scheduler")
        self.enqueued += len(sent)
        return sent

    async def run(self) -> None:
        """Tick at every slot minute until stopped. A failed tick (the database is away)
        is tried again at the next wake-up, from where it left off."""
        if not self._enabled:
            log.warning("the cron flag is off: the scheduler enqueues nothing")
        last = self._clock()
        while not self._stop.is_set():
            due = [t for s, _ in self._schedules if (t := s.next_after(last)) is not None]
            if not due:
                return
            wait = (min(due) - self._clock()).total_seconds()
            if wait > 0:
                await self._sleep_unless_stopped(wait)
                continue
            now = self._clock()
            try:
                await self.tick(last, now)
            except JobFailed as err:
                if not err.transient:
                    raise
                log.warning("scheduler tick failed: %s; trying again", err)
                await self._sleep_unless_stopped(1.0)
                continue
            last = now

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        stop = asyncio.create_task(self._stop.wait())
        nap = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait([stop, nap], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, nap):
                task.cancel()
            await asyncio.wait([stop, nap])
