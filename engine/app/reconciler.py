"""The reconciler: every pass, each job's due slots in its catch-up window are compared
with the run ledger, ``cronwright.dispatched`` and the pauses, and what is missing is
enqueued through :func:`engine.runtime.dispatch.dispatch` (each slot at most once, however
many reconcilers run: the claim's primary key decides).

It never enqueues:
- a slot that is not due yet, nor one still inside the grace period (``grace_seconds``):
  the Worker's own message is not recorded anywhere until its run is claimed, so a
  young slot is given time before it counts as missing. A Worker message that waits in
  a backlog longer than that is sent twice; the ledger turns the second run into a
  ``duplicate``;
- anything while the cron flag is off (``worker.cron_enabled``, overridden by the
  environment variable named by ``worker.cron_flag``, "true" meaning on, as the Worker
  reads it). Slots missed while it was off are caught up by each job's policy once it
  is on again, as far back as ``within_seconds``;
- a slot of a paused job (``paused: true`` in the manifest), or one inside a runtime
  pause: those are skipped for good.

Policies: ``all`` enqueues every missing slot in the window, ``latest`` the newest due
slot if it is missing (an older one is superseded by it), ``none`` nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from engine.core.errors import CronwrightError
from engine.core.model import CatchUpPolicy, Job, Manifest
from engine.runtime import accounting
from engine.runtime.dispatch import Sender, Slot, dispatch
from engine.runtime.ledger import Db
from engine.schedule.slots import Schedule, cron_schedule

log = logging.getLogger(__name__)

#: Seconds a due slot is left to the Worker's own message before it counts as missing.
DEFAULT_GRACE_SECONDS = 600
DEFAULT_INTERVAL = 60.0


def cron_enabled(manifest: Manifest, environ: Mapping[str, str]) -> bool:
    """The Worker's rule: the flag var, when set, is on only as the string "true"."""
    value = environ.get(manifest.worker.cron_flag)
    return manifest.worker.cron_enabled if value is None else value.strip() == "true"


class Reconciler:
    def __init__(
        self,
        db: Db,
        manifest: Manifest,
        sender: Sender,
        *,
        clock: Callable[[], datetime],
        environ: Mapping[str, str],
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        include_disabled: bool = False,
        dry_run: bool = False,
    ) -> None:
        self._db = db
        self._manifest = manifest
        self._sender = sender
        self._clock = clock
        self._environ = environ
        self._grace = timedelta(seconds=grace_seconds)
        self._include_disabled = include_disabled
        self._dry_run = dry_run
        self._schedules: dict[str, Schedule] = {j.name: cron_schedule(j) for j in manifest.jobs}

    async def plan(self) -> list[Slot]:
        """The slots this pass would enqueue, by policy: one query per job."""
        now = self._clock()
        if not (self._include_disabled or cron_enabled(self._manifest, self._environ)):
            return []
        out: list[Slot] = []
        for job in self._manifest.jobs:
            out += await self._missing(job, now)
        return sorted(out, key=lambda s: (s.slot, s.job.name))

    async def _missing(self, job: Job, now: datetime) -> list[Slot]:
        policy = job.catch_up.policy
        if job.paused or policy is CatchUpPolicy.NONE:
            return []
        start = now - timedelta(seconds=job.catch_up.within_seconds)
        # Due and past the grace period: slot <= now - grace.
        end = now - self._grace + timedelta(microseconds=1)
        due = accounting.due_slots(self._schedules[job.name], start, end)
        if policy is CatchUpPolicy.LATEST:
            due = due[-1:]
        found = await accounting.statuses(self._db, job, due)
        return [Slot(job, s.slot) for s in found if s.status == "missing"]

    async def run_once(self) -> list[Slot]:
        """One pass: the slots enqueued now (with ``dry_run``, those that would be)."""
        planned = await self.plan()
        if self._dry_run:
            return planned
        return await dispatch(self._db, self._sender, planned, source="reconciler")

    async def run_forever(self, stop: asyncio.Event, interval: float = DEFAULT_INTERVAL) -> None:
        """A pass every ``interval`` seconds until ``stop`` is set. A failed pass (the
        database or the queue away, a refused token) is logged and the next pass tries
        again: the consumer or scheduler it runs beside must go on."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except CronwrightError as err:
                level = logging.WARNING if getattr(err, "transient", False) else logging.ERROR
                log.log(level, "reconcile pass failed: %s; trying again in %gs", err, interval)
            else:
                if sent:
                    log.info("reconciler enqueued %d missing slot(s)", len(sent))
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                continue
