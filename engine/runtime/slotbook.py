"""The scheduling core's book: each job's missing (and pending) slots, kept up to date
incrementally by the reconciler, the gauges and the notifier (:class:`SlotBook`), by the
rules of :mod:`engine.runtime.scheduling`. A refresh asks the store one question however
many jobs there are, about the slots that came due and the open ones; jobs that share a
schedule and came due together are asked about, and classified, as one."""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.model import CatchUpPolicy, Job
from engine.core.times import floor_minute
from engine.runtime.ports import SlotFacts, SlotStore
from engine.runtime.scheduling import (
    OPEN,
    SlotStatus,
    history_start,
    is_latest,
    status_of,
)
from engine.schedule.slots import (
    Schedule,
    ScheduleFor,
    ScheduleKey,
    cron_schedule,
    schedule_key,
    slots_from,
)

__all__ = ["SlotBook"]

_TICK = timedelta(microseconds=1)
#: What the book knows of a slot with a ledger row or a dispatch: its status is final and
#: not open (which one it is, the book does not need).
_RECORDED = "recorded"


def _none_in(places: Sequence[int], lo: int, hi: int) -> bool:
    """Whether no position of the sorted ``places`` is in ``[lo, hi)``."""
    k = bisect.bisect_left(places, lo)
    return k == len(places) or places[k] >= hi


@dataclass(frozen=True)
class _Crew:
    """Jobs asked about together, with what a refresh needs of them all at once: their
    names (in order, and as a set), which are ``latest`` jobs, and the latest lower
    bound any of them can have (the latest history start, the shortest catch-up
    window)."""

    jobs: tuple[Job, ...]
    names: tuple[str, ...]
    name_set: frozenset[str]
    flags: tuple[bool, ...]  # each job: is it a `latest` job?
    start: datetime
    within: timedelta

    @classmethod
    def of(
        cls,
        jobs: Sequence[Job],
        starts: Mapping[str, datetime],
        withins: Mapping[str, timedelta],
    ) -> _Crew:
        names = tuple(j.name for j in jobs)
        return cls(
            tuple(jobs),
            names,
            frozenset(names),
            tuple(is_latest(j) for j in jobs),
            max(starts[name] for name in names),
            min(withins[name] for name in names),
        )


@dataclass(frozen=True)
class _Ask:
    """Slots to ask about: each of ``slots`` of each of the crew's jobs (job by job).
    Most asks are a cohort's jobs and the slots they came due at together; a job with
    open slots asks on its own."""

    crew: _Crew
    slots: list[datetime]

    @property
    def size(self) -> int:
        return len(self.crew.jobs) * len(self.slots)


class SlotBook:
    """Each job's missing (and pending) slots, kept up to date incrementally.

    A refresh classifies the slots that came due since the last one and re-checks those
    that were missing or pending; every other status is final as far as catch-up goes,
    and so is a slot a dispatch was just given (:meth:`closed`). So a refresh asks the
    store one question (two while a job's history start is not known yet) whatever the
    number of jobs: the facts of the asked slots that have no record (a slot with a
    ledger row or a dispatch is closed, whatever its status). Its work follows the slots
    that came due and the open ones, not the number of jobs nor the length of the window:
    jobs wait in cohorts (one schedule, classified up to one time) on a heap keyed by
    their next due slot, and only the cohorts that came due are looked at. A job's slots
    are looked at from its history start or the start of its catch-up window
    (``catch_up.within_seconds``), whichever is later.
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
        self._unseen = [j.name for j in self._jobs]  # no first sighting known yet
        self._start: dict[str, datetime] = {}  # history starts, once known
        self._within = {j.name: timedelta(seconds=j.catch_up.within_seconds) for j in jobs}
        self._waiting = list(self._jobs)  # no history start yet
        self._schedules: dict[ScheduleKey, Schedule] = {}
        # Cohorts: the jobs of a schedule whose next slot to classify is `due` come due
        # together, and their slots are listed once. A cohort whose schedule fires no more
        # waits under None, for nothing.
        self._cohorts: dict[tuple[ScheduleKey, datetime | None], _Crew] = {}
        self._due: list[tuple[datetime, int, ScheduleKey]] = []  # a heap of the cohorts
        self._pushed = 0  # a tie-breaker for the heap
        self._open: dict[str, list[SlotStatus]] = {}  # jobs with missing or pending slots
        # A `latest` job's newest slot classified past the grace period, and its status.
        self._newest: dict[str, tuple[datetime, str]] = {}
        # Slots closed (:meth:`closed`) before a refresh listed them: the local
        # scheduler's, sent as they come due. A refresh does not ask about them.
        self._ahead: dict[datetime, set[str]] = {}
        self._refreshed: datetime | None = None  # the last refresh's `now`
        self._refreshing = asyncio.Lock()  # the gauges and the reconciler share a book
        self._listeners: list[Callable[[datetime], None]] = []
        for job in self._jobs:
            key = schedule_key(job)
            if key not in self._schedules:
                self._schedules[key] = schedule_for(job)

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
        if self._unseen:
            store = self._store
            unseen = self._unseen
            seen = await (
                store.register(unseen, now) if self._register else store.first_seen(unseen)
            )
            self._first_seen.update(seen)
            self._unseen = [name for name in unseen if name not in self._first_seen]
        if self._waiting:
            self._place(now)
        asks = self._candidates(now)
        pairs: list[tuple[str, datetime]] = []
        latest: list[bool] = []
        for ask in asks:
            crew, slots = ask.crew, ask.slots
            if len(slots) == 1:
                pairs += zip(crew.names, itertools.repeat(slots[0]))
                latest += crew.flags
                continue
            for name, flag in zip(crew.names, crew.flags, strict=True):
                pairs += [(name, t) for t in slots]
                latest += [flag] * len(slots)
        found = await self._store.open_facts(pairs, latest) if pairs else {}
        self._classify(asks, found, now)
        self._refreshed = now
        self._ahead = {t: names for t, names in self._ahead.items() if t > now}

    def _classify(self, asks: list[_Ask], found: Mapping[int, SlotFacts], now: datetime) -> None:
        """Each asked job's open slots and (``latest`` jobs) its newest slot past the
        grace period, from the facts of its slots with no record (a recorded slot is
        closed); a job with open slots that asked nothing has none left. An ask of
        several jobs none of whose slots has facts (a steady pass: all of them recorded)
        changes nothing: its jobs had no open slots (a job with open slots asks on its
        own) and have none, and a ``latest`` job's newest slot counts only when it is
        missing."""
        due = now - self.grace
        stale = set(self._open)
        places = sorted(found)
        i = 0
        for ask in asks:
            if len(ask.crew.jobs) > 1 and _none_in(places, i, i + ask.size):
                i += ask.size  # every slot recorded, and no job of the crew was open
                continue
            for job in ask.crew.jobs:
                name, start, newest = job.name, self._start[job.name], None
                still = []
                for t in ask.slots:
                    facts = found.get(i)
                    i += 1
                    if facts is None:
                        status = _RECORDED
                    else:
                        status = status_of(job, t, facts, start, now=now, grace=self.grace)
                        if status in OPEN:
                            still.append(SlotStatus(job, t, status, facts.attempts))
                    if t <= due and status != "not_deployed":
                        newest = (t, status)
                stale.discard(name)
                if still:
                    self._open[name] = still
                else:
                    self._open.pop(name, None)
                if newest is not None and is_latest(job):
                    known = self._newest.get(name)
                    if known is None or newest[0] >= known[0]:
                        self._newest[name] = newest
        for name in stale:
            del self._open[name]

    def _place(self, now: datetime) -> None:
        """Jobs whose history start became known join the cohort of their schedule that
        starts at their lower bound."""
        waiting = []
        placed: dict[tuple[ScheduleKey, datetime | None], list[Job]] = {}
        for job in self._waiting:
            start = history_start(job, self._first_seen.get(job.name))
            if start is None:
                waiting.append(job)
                continue
            self._start[job.name] = start
            key = schedule_key(job)
            first = self._schedules[key].next_after(floor_minute(self._lower(job, now) - _TICK))
            placed.setdefault((key, first), []).append(job)
        for (key, first), jobs in placed.items():
            self._file(key, first, self._crew(jobs))
        self._waiting = waiting

    def _lower(self, job: Job, now: datetime) -> datetime:
        """The oldest slot of the job still looked at: its history start or the start of
        its catch-up window, whichever is later."""
        return max(self._start[job.name], now - self._within[job.name])

    def _file(self, key: ScheduleKey, due: datetime | None, crew: _Crew) -> None:
        """Add ``crew`` to the cohort of schedule ``key`` whose next slot to classify is
        ``due``; a new cohort waits on the heap for it (never, if None: the schedule fires
        no more)."""
        joined = self._cohorts.get((key, due))
        if joined is not None:
            self._cohorts[(key, due)] = self._crew([*joined.jobs, *crew.jobs])
            return
        self._cohorts[(key, due)] = crew
        if due is not None:
            self._pushed += 1
            heapq.heappush(self._due, (due, self._pushed, key))

    def _crew(self, jobs: Sequence[Job]) -> _Crew:
        return _Crew.of(jobs, self._start, self._within)

    def _candidates(self, now: datetime) -> list[_Ask]:
        """Per job: its open slots still in its window, then the slots due since its
        cohort's last check (listed once per cohort, and asked about for the whole
        cohort at once when every one of its jobs looks at all of them and none has open
        slots)."""
        fresh: dict[str, tuple[Job, list[datetime]]] = {}
        asks: list[_Ask] = []
        while self._due and self._due[0][0] <= now:
            due, _, key = heapq.heappop(self._due)
            crew = self._cohorts.pop((key, due))
            slots, after = slots_from(self._schedules[key], due, now + _TICK)
            lower = max(crew.start, now - crew.within)  # no job of the crew looks lower
            if slots[0] >= lower and self._open.keys().isdisjoint(crew.name_set):
                if self._ahead:  # a slot closed already for all the crew is not asked
                    slots = [t for t in slots if not crew.name_set <= self._ahead.get(t, set())]
                if slots:
                    asks.append(_Ask(crew, slots))
            else:
                for job in crew.jobs:
                    mine = slots[bisect.bisect_left(slots, self._lower(job, now)) :]
                    if mine:
                        fresh[job.name] = (job, mine)
            self._file(key, after, crew)
        for name, open_ in self._open.items():
            job = open_[0].job
            lower = self._lower(job, now)
            kept = [s.slot for s in open_ if s.slot >= lower]
            _, new = fresh.pop(name, (job, []))
            if kept or new:
                asks.append(_Ask(self._crew([job]), kept + new))
        asks += [_Ask(self._crew([job]), slots) for job, slots in fresh.values()]
        return asks

    async def closed(self, slots: Iterable[tuple[Job, datetime]]) -> None:
        """Slots a dispatch just claimed, or found claimed or paused (it returned: every
        slot it was given is one of those): their status is final, so the next refresh
        need not ask about them again, whether a refresh listed them already (the
        reconciler's) or not (the local scheduler's, sent as they come due: a pass of
        ``serve`` then asks about none of the slots its own scheduler sent)."""
        async with self._refreshing:
            self._close(slots)

    def _close(self, slots: Iterable[tuple[Job, datetime]]) -> None:
        done: dict[str, set[datetime]] = {}
        for job, t in slots:
            done.setdefault(job.name, set()).add(t)
            if self._refreshed is None or t > self._refreshed:
                self._ahead.setdefault(t, set()).add(job.name)
        for name, times in done.items():
            still = [s for s in self._open.get(name, []) if s.slot not in times]
            if still:
                self._open[name] = still
            else:
                self._open.pop(name, None)
            newest = self._newest.get(name)
            if newest is not None and newest[0] in times:
                self._newest[name] = (newest[0], _RECORDED)
        self._advance()

    def _advance(self) -> None:
        """Cohorts whose next slot is closed for every one of their jobs move past it at
        once: a refresh would only list that slot to find it closed (a job's open slots
        are asked about on their own, and the store's facts say which a newer closed slot
        superseded). So when ``serve``'s scheduler tells the book what each tick sent,
        the passes after it have nothing to list for the cohorts it sent, and cost the
        same for six jobs as for a thousand."""
        held = []
        while self._due and (names := self._ahead.get(self._due[0][0])) is not None:
            entry = heapq.heappop(self._due)
            due, _, key = entry
            crew = self._cohorts[(key, due)]
            if crew.name_set <= names:
                del self._cohorts[(key, due)]
                self._file(key, self._schedules[key].next_after(due), crew)
            else:
                held.append(entry)
        for entry in held:
            heapq.heappush(self._due, entry)

    def missing(self, job: Job) -> list[datetime]:
        """The job's missing slots as of the last refresh, oldest first."""
        return [s.slot for s in self._open.get(job.name, []) if s.status == "missing"]

    def missing_by_job(self) -> dict[str, list[datetime]]:
        """Every job with missing slots as of the last refresh: its missing slots."""
        found = {
            name: [s.slot for s in open_ if s.status == "missing"]
            for name, open_ in self._open.items()
        }
        return {name: slots for name, slots in found.items() if slots}

    def to_enqueue(self, now: datetime) -> list[tuple[Job, datetime]]:
        """The missing slots to enqueue now, by each job's catch-up policy, oldest first."""
        out: list[tuple[Job, datetime]] = []
        for name, open_ in self._open.items():
            job = open_[0].job
            policy = job.catch_up.policy
            if job.paused or policy is CatchUpPolicy.NONE:
                continue
            lower = now - self._within[name]
            if policy is CatchUpPolicy.ALL:
                out += [(job, s.slot) for s in open_ if s.status == "missing" and s.slot >= lower]
            elif (newest := self._newest.get(name)) is not None:
                slot, status = newest
                # `missing` means no newer slot was sent or ran (else it reads superseded).
                if status == "missing" and slot >= lower:
                    out.append((job, slot))
        return sorted(out, key=lambda p: (p[1], p[0].name))
