"""The scheduling core: which of a job's slots are due, what became of each, and which
missing ones to enqueue now. Every path asks it: the local scheduler (the cron flag), the
reconciler (``reconcile``, ``serve``, ``consume``), ``slots``, the Prometheus gauges,
backfill's plan and the web console.

A slot's status is one of :data:`STATUSES`, decided by :func:`status_of` in this order:
the run ledger's row (``succeeded``, ``failed``, ``dead_lettered``, ``running``,
``paused``, ``superseded``); a manifest or runtime pause (``paused``); cronwright sent it
(``queued``); a newer slot of a ``latest`` job was sent or ran (``superseded``: it will
never run); before the job's history starts (``not_deployed``); still inside the grace
period (``pending``); else ``missing``.

The rules:
- **History** starts when a scheduler, reconciler or consumer of the database first saw
  the job (``cronwright.jobs``), or at ``catch_up.since``: nothing before it is owed.
- **Grace** only where it is needed: a slot the Cloudflare Worker sends is recorded
  nowhere until it runs, so it gets ``grace`` before it counts as missing; the local
  scheduler records every slot it sends, so on the Postgres transport a due slot with
  no record is missing at once (:func:`grace_for`).
- **Catch-up** (:meth:`SlotBook.to_enqueue`): ``all`` enqueues every missing slot within
  ``within_seconds``; ``latest`` the newest due slot, only when it is missing and no
  newer slot has been sent or run; ``none`` nothing. Never a manifest-paused job, never
  while the cron flag is off (the caller's check: :func:`cron_enabled`).
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.core import cronflag
from engine.core.model import CatchUpPolicy, Job, Manifest, Transport
from engine.core.times import iso
from engine.runtime.ports import SlotFacts, SlotStore
from engine.schedule.slots import (
    Schedule,
    ScheduleFor,
    ScheduleKey,
    between,
    cron_schedule,
    schedule_key,
)

#: The one status vocabulary of a slot (the CLI, the gauges, the console).
STATUSES = (
    "succeeded",
    "failed",
    "dead_lettered",
    "running",
    "queued",
    "pending",
    "missing",
    "paused",
    "superseded",
    "not_deployed",
)
#: A ledger row's status is the slot's status, whatever else is recorded about it.
_LEDGER = frozenset({"succeeded", "failed", "dead_lettered", "running", "paused", "superseded"})
#: Slots whose status can still turn into `missing` or away from it.
_OPEN = frozenset({"missing", "pending"})


def cron_enabled(manifest: Manifest, environ: Mapping[str, str]) -> bool:
    """Whether scheduled dispatch is on: the Worker's reading of its cron flag
    (:mod:`engine.core.cronflag`)."""
    worker = manifest.worker
    return cronflag.is_on(environ.get(worker.cron_flag), worker.cron_enabled)


def grace_for(transport: str) -> timedelta:
    """How long a due slot with no record is given before it counts as missing
    (:attr:`engine.core.model.Transport.grace_seconds`)."""
    return timedelta(seconds=Transport(transport).grace_seconds)


def history_start(job: Job, first_seen: datetime | None) -> datetime | None:
    """Where the job's owed slots begin: ``catch_up.since``, else its first sighting."""
    return job.catch_up.since if job.catch_up.since is not None else first_seen


@dataclass(frozen=True)
class SlotStatus:
    job: Job
    slot: datetime
    status: str
    attempts: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job.name,
            "type": self.job.type,
            "slot": iso(self.slot),
            "status": self.status,
            "attempts": self.attempts,
        }


def status_of(
    job: Job,
    slot: datetime,
    facts: SlotFacts,
    start: datetime | None,
    *,
    now: datetime,
    grace: timedelta,
) -> str:
    """The status of one due slot (the module doc's order). ``start``: the job's history
    start (None: never deployed)."""
    if facts.ledger in _LEDGER:
        return str(facts.ledger)
    if facts.paused or job.paused:
        return "paused"
    if facts.dispatched:
        return "queued"
    if facts.newer_active and job.catch_up.policy is CatchUpPolicy.LATEST:
        return "superseded"
    if start is None or slot < start:
        return "not_deployed"
    if slot > now - grace:
        return "pending"
    return "missing"


def _latest(job: Job) -> bool:
    return job.catch_up.policy is CatchUpPolicy.LATEST


async def statuses(
    store: SlotStore,
    wanted: Sequence[tuple[Job, Sequence[datetime]]],
    *,
    now: datetime,
    grace: timedelta,
    first_seen: Mapping[str, datetime] | None = None,
) -> list[SlotStatus]:
    """The status of each wanted slot, in the order given: two questions to the store
    whatever the number of jobs and slots (one when ``first_seen`` is given)."""
    if first_seen is None:
        first_seen = await store.first_seen([job.name for job, _ in wanted])
    pairs = [(job.name, t) for job, slots in wanted for t in slots]
    latest = [_latest(job) for job, slots in wanted for _ in slots]
    found = await store.facts(pairs, latest) if pairs else []
    out: list[SlotStatus] = []
    i = 0
    for job, slots in wanted:
        start = history_start(job, first_seen.get(job.name))
        for t in slots:
            f = found[i]
            out.append(
                SlotStatus(job, t, status_of(job, t, f, start, now=now, grace=grace), f.attempts)
            )
            i += 1
    return out


_TICK = timedelta(microseconds=1)


def due_slots_by_job(
    jobs: Iterable[Job],
    start: datetime,
    end: datetime,
    now: datetime,
    schedule_for: ScheduleFor = cron_schedule,
) -> list[tuple[Job, list[datetime]]]:
    """Each job's due slots in ``[start, end)``: a slot not due yet has no status, so the
    range stops at ``now`` (what ``cronwright slots`` lists and the console's grid shows)."""
    return slots_by_job(jobs, start, min(end, now + _TICK), schedule_for)


def slots_by_job(
    jobs: Iterable[Job],
    start: datetime,
    end: datetime,
    schedule_for: ScheduleFor = cron_schedule,
) -> list[tuple[Job, list[datetime]]]:
    """Each job's slots in ``[start, end)``, computed once per distinct schedule."""
    memo: dict[ScheduleKey, list[datetime]] = {}
    out = []
    for job in jobs:
        key = schedule_key(job)
        if key not in memo:
            memo[key] = between(schedule_for(job), start, end)
        out.append((job, memo[key]))
    return out


@dataclass
class _Entry:
    """What the book knows of one job."""

    checked: datetime  # every due slot at or before this has been classified
    open: list[SlotStatus] = field(default_factory=list)  # missing or pending, by slot
    newest: SlotStatus | None = None  # the newest slot classified past the grace period


class SlotBook:
    """Each job's missing (and pending) slots, kept up to date incrementally.

    A refresh classifies the slots that came due since the last one and re-checks those
    that were missing or pending; every other status is final as far as catch-up goes.
    So a refresh asks the store one question (two while a job's history start is not
    known yet) whatever the number of jobs, and its work follows the slots that came due,
    not the length of the window. A job's slots are looked at from its history start or
    the start of its catch-up window (``catch_up.within_seconds``), whichever is later.
    ``register``: record jobs never seen before as first seen now (a scheduler,
    reconciler or consumer starting); without it they are looked up only.
    """

    def __init__(
        self,
        store: SlotStore,
        jobs: Sequence[Job],
        *,
        grace: timedelta,
        register: bool,
        schedule_for: ScheduleFor = cron_schedule,
    ) -> None:
        self._store = store
        self._jobs = list(jobs)
        self.grace = grace
        self._register = register
        self._first_seen: dict[str, datetime] = {}
        self._entries: dict[str, _Entry] = {}
        self._schedules: dict[ScheduleKey, Schedule] = {}
        self._refreshing = asyncio.Lock()  # the gauges and the reconciler share a book
        self._listeners: list[Callable[[datetime], None]] = []
        for job in self._jobs:
            key = schedule_key(job)
            if key not in self._schedules:
                self._schedules[key] = schedule_for(job)

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    async def refresh(self, now: datetime) -> None:
        """Bring the book up to ``now``."""
        async with self._refreshing:
            await self._refresh(now)
            for listener in self._listeners:
                listener(now)

    def listen(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(now)`` after each refresh, whoever asked for it: the notifier
        sees every slot that was missing at a refresh, even one the reconciler enqueued
        at once."""
        self._listeners.append(listener)

    async def _refresh(self, now: datetime) -> None:
        unknown = [j.name for j in self._jobs if j.name not in self._first_seen]
        if unknown:
            store = self._store
            seen = await (
                store.register(unknown, now) if self._register else store.first_seen(unknown)
            )
            self._first_seen.update(seen)
        candidates = self._candidates(now)
        found = await statuses(
            self._store,
            [(job, slots) for job, slots in candidates if slots],
            now=now,
            grace=self.grace,
            first_seen=self._first_seen,
        )
        by_job: dict[str, list[SlotStatus]] = {}
        for s in found:
            by_job.setdefault(s.job.name, []).append(s)
        due = now - self.grace
        for job, _ in candidates:
            entry = self._entries[job.name]
            classified = by_job.get(job.name, [])
            entry.open = [s for s in classified if s.status in _OPEN]
            past = [s for s in classified if s.slot <= due and s.status != "not_deployed"]
            if past and (entry.newest is None or past[-1].slot >= entry.newest.slot):
                entry.newest = past[-1]
            entry.checked = max(entry.checked, now)

    def _candidates(self, now: datetime) -> list[tuple[Job, list[datetime]]]:
        """Per job with a history: its open slots still in its window, then the slots
        due since its last check (listed once per distinct schedule and shared)."""
        jobs: list[tuple[Job, datetime, datetime]] = []  # job, lower bound, checked until
        for job in self._jobs:
            start = history_start(job, self._first_seen.get(job.name))
            if start is None:
                continue
            lower = max(start, now - timedelta(seconds=job.catch_up.within_seconds))
            entry = self._entries.setdefault(job.name, _Entry(checked=lower - _TICK))
            jobs.append((job, lower, max(entry.checked, lower - _TICK)))
        earliest: dict[ScheduleKey, datetime] = {}
        for job, _, since in jobs:
            key = schedule_key(job)
            if key not in earliest or since < earliest[key]:
                earliest[key] = since
        listed = {
            key: between(self._schedules[key], since + _TICK, now + _TICK)
            for key, since in earliest.items()
        }
        out = []
        for job, lower, since in jobs:
            slots = listed[schedule_key(job)]
            fresh = slots[bisect.bisect_right(slots, since) :]
            kept = [s.slot for s in self._entries[job.name].open if s.slot >= lower]
            out.append((job, kept + fresh))
        return out

    def missing(self, job: Job) -> list[datetime]:
        """The job's missing slots as of the last refresh, oldest first."""
        entry = self._entries.get(job.name)
        return [s.slot for s in entry.open if s.status == "missing"] if entry else []

    def to_enqueue(self, now: datetime) -> list[tuple[Job, datetime]]:
        """The missing slots to enqueue now, by each job's catch-up policy, oldest first."""
        out: list[tuple[Job, datetime]] = []
        for job in self._jobs:
            entry = self._entries.get(job.name)
            policy = job.catch_up.policy
            if entry is None or job.paused or policy is CatchUpPolicy.NONE:
                continue
            lower = now - timedelta(seconds=job.catch_up.within_seconds)
            if policy is CatchUpPolicy.ALL:
                out += [
                    (job, s.slot) for s in entry.open if s.status == "missing" and s.slot >= lower
                ]
            elif (newest := entry.newest) and newest.status == "missing" and newest.slot >= lower:
                # `missing` means no newer slot was sent or ran (else it reads superseded).
                out.append((job, newest.slot))
        return sorted(out, key=lambda p: (p[1], p[0].name))
