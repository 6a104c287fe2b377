"""The scheduling core: which of a job's slots are due, what became of each, and which
missing ones to enqueue now. Every path asks it: the local scheduler (the cron flag), the
reconciler (``reconcile``, ``serve``, ``consume``), ``slots``, the Prometheus gauges,
backfill's plan and the web console.

A slot's status is one of :data:`STATUSES`, decided by :func:`status_of` in this order:
the run ledger's row (``succeeded``, ``failed``, ``dead_lettered``, ``running``,
``paused``, ``superseded``); a manifest or runtime pause (``paused``); cronwright sent it
(``queued``); before the job's history starts (``not_deployed``); a newer slot of a
``latest`` job was sent or ran (``superseded``: it will never run); still inside the
grace period (``pending``); else ``missing``.

The rules:
- **History** starts when a scheduler, reconciler or consumer of the database first saw
  the job (``cronwright.jobs``), or at ``catch_up.since``: nothing before it is owed.
- **Grace** only where it is needed: a slot the Cloudflare Worker sends is recorded
  nowhere until it runs, so it gets ``grace`` before it counts as missing; the local
  scheduler records every slot it sends, so on the Postgres transport a due slot with
  no record is missing at once (:func:`grace_for`).
- **Catch-up** (:meth:`engine.runtime.slotbook.SlotBook.to_enqueue`, which keeps each
  job's open slots incrementally for every pass): ``all`` enqueues every missing slot within
  ``within_seconds``; ``latest`` the newest due slot, only when it is missing and no
  newer slot has been sent or run; ``none`` nothing. Never a manifest-paused job, never
  while the cron flag is off (the caller's check: :func:`cron_enabled`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.core import cronflag
from engine.core.model import CatchUpPolicy, Job, Manifest, Transport
from engine.core.times import iso
from engine.runtime.ports import JobFacts, SlotFacts, SlotStore
from engine.schedule.slots import (
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
OPEN = frozenset({"missing", "pending"})


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
    if start is None or slot < start:
        return "not_deployed"
    if facts.newer_active and job.catch_up.policy is CatchUpPolicy.LATEST:
        return "superseded"
    if slot > now - grace:
        return "pending"
    return "missing"


def is_latest(job: Job) -> bool:
    """Whether the job catches up its newest slot only (``catch_up.policy: latest``)."""
    return job.catch_up.policy is CatchUpPolicy.LATEST


@dataclass(frozen=True)
class Overview:
    """The status of each wanted slot, in the order given, and what is recorded about each
    wanted job (its first sighting, its open runtime pause)."""

    statuses: list[SlotStatus]
    jobs: Mapping[str, JobFacts]


async def overview(
    store: SlotStore,
    wanted: Sequence[tuple[Job, Sequence[datetime]]],
    *,
    now: datetime,
    grace: timedelta,
) -> Overview:
    """The wanted slots' statuses and their jobs' facts: one question to the store whatever
    the number of jobs and slots (none when nothing is wanted)."""
    if not wanted:
        return Overview([], {})
    pairs, latest = _asked(wanted)
    jobs, found = await store.jobs_and_facts([job.name for job, _ in wanted], pairs, latest)
    first_seen = {name: f.first_seen for name, f in jobs.items() if f.first_seen is not None}
    return Overview(_statuses(wanted, found, first_seen, now=now, grace=grace), jobs)


async def statuses(
    store: SlotStore,
    wanted: Sequence[tuple[Job, Sequence[datetime]]],
    *,
    now: datetime,
    grace: timedelta,
    first_seen: Mapping[str, datetime] | None = None,
) -> list[SlotStatus]:
    """The status of each wanted slot, in the order given: one question to the store
    whatever the number of jobs and slots (:func:`overview`'s; the slots' facts alone when
    ``first_seen`` is given)."""
    if first_seen is None:
        return (await overview(store, wanted, now=now, grace=grace)).statuses
    pairs, latest = _asked(wanted)
    found = await store.facts(pairs, latest) if pairs else []
    return _statuses(wanted, found, first_seen, now=now, grace=grace)


def _asked(
    wanted: Sequence[tuple[Job, Sequence[datetime]]],
) -> tuple[list[tuple[str, datetime]], list[bool]]:
    """Each wanted (job, slot) in order, and whether its newer-slot fact is wanted."""
    pairs = [(job.name, t) for job, slots in wanted for t in slots]
    latest = [is_latest(job) for job, slots in wanted for _ in slots]
    return pairs, latest


def _statuses(
    wanted: Sequence[tuple[Job, Sequence[datetime]]],
    found: Sequence[SlotFacts],
    first_seen: Mapping[str, datetime],
    *,
    now: datetime,
    grace: timedelta,
) -> list[SlotStatus]:
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
