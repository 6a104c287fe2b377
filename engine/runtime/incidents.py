"""When something is worth telling: the one rule for each notification event, as a pure
function of what happened since the last scan (:mod:`engine.runtime.noticescan` reads it).

- ``dead_letter``: every dead letter, to the job's targets (a letter that names no known
  job goes to the manifest's top-level targets).
- ``missing``: slots missing past their grace (the scheduling core's
  :meth:`~engine.runtime.slotbook.SlotBook.missing`) for :data:`MISSING_AFTER` more,
  so that a slot the scheduler is sending at that very moment is not one. Told once per
  incident, with every slot that went missing when it was noticed.
- ``recovery``: the job succeeds at or after the newest slot a problem was reported for;
  told once per incident, to the targets that were told of its problems.
- ``near_timeout``: a run (succeeded, failed or dead-lettered) that took more than 80% of
  its job's ``timeout_seconds`` (:func:`engine.core.durations.near_timeout_seconds`).

An incident opens at a job's dead letter or new missing slot when none is open, and closes
at its recovery. A slot still missing after its incident closed (a job whose catch-up
policy leaves it missing) is not a new problem: only slots after the newest one reported
are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from engine.core.durations import near_timeout_seconds
from engine.core.job import Event, Notify
from engine.core.model import Job, Manifest
from engine.runtime import notices
from engine.runtime.notices import Letter, Notice, Run

#: How long a slot must stay missing past its grace before it is told: a slot the
#: scheduler is enqueueing right now reads as missing for a moment.
MISSING_AFTER = timedelta(minutes=1)
#: Runs whose duration is the job's own (not a duplicate's or a paused slot's).
_RAN = frozenset({"succeeded", "failed", "dead_lettered"})


@dataclass(frozen=True)
class JobState:
    """A notified job's incidents (``cronwright.notification_jobs``)."""

    incidents: int = 0  # how many the job has had; the last one is open while open_since is set
    open_since: datetime | None = None  # the slot of the open incident's first problem
    open_kinds: frozenset[str] = frozenset()  # its problems: dead_letter, missing
    problem_slot: datetime | None = None  # the newest slot any problem was reported for

    @property
    def open(self) -> bool:
        return self.open_since is not None


@dataclass
class Changes:
    notices: list[Notice] = field(default_factory=list)
    states: dict[str, JobState] = field(default_factory=dict)  # those that changed


def to_tell(missing: Sequence[datetime], now: datetime, grace: timedelta) -> list[datetime]:
    """The missing slots (as the book has them at ``now``) that are missing long enough."""
    cutoff = now - grace - MISSING_AFTER
    return [s for s in missing if s <= cutoff]


def targets(notify: Iterable[Notify], event: Event) -> list[str]:
    """The URLs told about ``event``, each once, in the manifest's order."""
    return list(dict.fromkeys(n.url for n in notify if event in n.events))


def notified(manifest: Manifest) -> list[Job]:
    """The jobs someone is told about."""
    return [j for j in manifest.jobs if manifest.notify_for(j)]


def plan(
    manifest: Manifest,
    *,
    letters: Sequence[Letter],
    runs: Sequence[Run],
    missing: Mapping[str, Sequence[datetime]],
    states: Mapping[str, JobState],
    grace: timedelta,
) -> Changes:
    """The notices for what happened (letters and runs in the order they were written,
    each job's missing slots to tell), and the jobs' new incident states."""
    out = Changes()
    jobs = {j.name: j for j in manifest.jobs}
    for letter in letters:
        if letter.job not in jobs:  # poison of no known type, or a job no longer declared
            for url in targets(manifest.notify, Event.DEAD_LETTER):
                out.notices.append(notices.dead_letter(manifest.name, letter, url))
    for job in notified(manifest):
        before = states.get(job.name, JobState())
        state = _job(
            manifest,
            job,
            out.notices,
            before,
            [x for x in letters if x.job == job.name],
            [r for r in runs if r.job == job.name],
            missing.get(job.name, ()),
            grace,
        )
        if state != before:
            out.states[job.name] = state
    return out


def _job(
    manifest: Manifest,
    job: Job,
    out: list[Notice],
    state: JobState,
    letters: Sequence[Letter],
    runs: Sequence[Run],
    missing: Sequence[datetime],
    grace: timedelta,
) -> JobState:
    project, notify = manifest.name, manifest.notify_for(job)
    for letter in letters:
        out += [notices.dead_letter(project, letter, u) for u in targets(notify, Event.DEAD_LETTER)]
        if letter.slot is not None:
            state = _problem(state, "dead_letter", letter.slot, letter.slot)
    new = sorted(s for s in missing if state.problem_slot is None or s > state.problem_slot)
    if new:
        already = state.open and "missing" in state.open_kinds
        state = _problem(state, "missing", new[0], new[-1])
        if not already:
            out += [
                notices.missing(project, job, state.incidents, new, grace, u)
                for u in targets(notify, Event.MISSING)
            ]
    near = near_timeout_seconds(job) * 1000
    for run in runs:
        if run.status in _RAN and (run.duration_ms or 0.0) > near:
            out += [
                notices.near_timeout(project, job, run, u)
                for u in targets(notify, Event.NEAR_TIMEOUT)
            ]
        if (
            run.status == "succeeded"
            and state.open_since is not None
            and state.problem_slot is not None
            and run.slot >= state.problem_slot
        ):
            kinds = state.open_kinds
            told = [
                n.url
                for n in notify
                if Event.RECOVERY in n.events and any(Event(k) in n.events for k in kinds)
            ]
            since = state.open_since
            out += [
                notices.recovery(project, job.name, state.incidents, run, since, kinds, u)
                for u in dict.fromkeys(told)
            ]
            state = replace(state, open_since=None, open_kinds=frozenset())
    return state


def _problem(state: JobState, kind: str, first: datetime, last: datetime) -> JobState:
    """``state`` with a problem of ``kind`` at slots ``first`` to ``last``: it opens an
    incident when none is open."""
    newest = last if state.problem_slot is None else max(state.problem_slot, last)
    if state.open:
        return replace(state, open_kinds=state.open_kinds | {kind}, problem_slot=newest)
    return JobState(
        incidents=state.incidents + 1,
        open_since=first,
        open_kinds=frozenset({kind}),
        problem_slot=newest,
    )
