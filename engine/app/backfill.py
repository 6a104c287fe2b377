"""``cronwright backfill``: run every slot of some jobs in ``[start, end)`` through the
executor, each exactly as a scheduled run would (one transaction per slot: its effect and
its ledger row commit together or not at all).

Slots already succeeded are skipped unless ``rerun``; slots inside a runtime pause are
skipped for good. At most ``concurrency`` slots run at once, and slots that would only
wait on the same lock (every slot of a job whose runs must not overlap) queue here, in
slot order, instead of each holding a connection while it waits. ``stop`` (Ctrl-C) ends
the backfill between slots: a slot is either done or not started.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from engine.app import wiring
from engine.core.model import Job, Manifest, Overlap
from engine.core.times import iso
from engine.runtime import scheduling
from engine.runtime.executor import Executor
from engine.runtime.metrics import MetricsSink
from engine.runtime.outcome import Outcome
from engine.runtime.ports import Db
from engine.runtime.slotstore import PgSlotStore


@dataclass(frozen=True)
class Planned:
    job: Job
    slot: datetime
    status: str  # a status of the scheduling core (engine.runtime.scheduling.STATUSES)

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job.name, "slot": iso(self.slot), "status": self.status}


@dataclass(frozen=True)
class Done:
    job: Job
    slot: datetime
    status: str  # an Outcome status, or skipped / paused / not_started
    rows: int | None = None
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("dead_lettered", "retry", "failed")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job": self.job.name, "slot": iso(self.slot), "status": self.status}
        if self.rows is not None:
            out["rows"] = self.rows
        if self.reason:
            out["reason"] = self.reason
        return out


async def plan(
    db: Db, jobs: Sequence[Job], start: datetime, end: datetime, *, now: datetime
) -> list[Planned]:
    """Every due slot of ``jobs`` in ``[start, end)`` with its status, by slot then job:
    the scheduling core's answer (:func:`engine.runtime.scheduling.statuses`)."""
    wanted = scheduling.slots_by_job(jobs, start, min(end, now + timedelta(microseconds=1)))
    found = await scheduling.statuses(PgSlotStore(db), wanted, now=now, grace=timedelta(0))
    out = [Planned(s.job, s.slot, s.status) for s in found]
    out.sort(key=lambda p: (p.slot, p.job.name))
    return out


#: Slots a backfill never runs: recorded as not to run (a pause, a newer success of a
#: `latest` job), or done unless it recomputes.
_SKIPPED = {"paused": "paused", "superseded": "superseded"}


RunSlot = Callable[[Job, datetime], Awaitable[Outcome]]


def executor_runner(executor: Executor, *, rerun: bool) -> RunSlot:
    """``executor.run_until_done`` for one slot; with ``rerun`` each slot is recomputed
    from the source as a new rerun request."""

    async def run(job: Job, slot: datetime) -> Outcome:
        return await executor.run_until_done(
            job, slot, message_id=f"backfill-{iso(slot)}", rerun=rerun
        )

    return run


def lock_key(p: Planned) -> str:
    """Slots with one key would serialise on the job's lock: they share a queue."""
    if p.job.overlap is Overlap.FORBID:
        return p.job.name
    return f"{p.job.name}@{iso(p.slot)}"


async def backfill(
    planned: Sequence[Planned],
    run_slot: RunSlot,
    *,
    rerun: bool = False,
    concurrency: int = 1,
    stop: asyncio.Event | None = None,
    on_done: Callable[[Done], None] = lambda d: None,
) -> list[Done]:
    """Run the planned slots that need it; returns one :class:`Done` per planned slot, in
    plan order. Once ``stop`` is set no slot starts; those running finish."""
    stop = stop or asyncio.Event()
    results: dict[tuple[str, datetime], Done] = {}
    queues: dict[str, list[Planned]] = {}
    for p in planned:
        if p.status in _SKIPPED and not (rerun and p.status == "superseded"):
            results[(p.job.name, p.slot)] = Done(p.job, p.slot, _SKIPPED[p.status])
        elif p.status == "succeeded" and not rerun:
            results[(p.job.name, p.slot)] = Done(p.job, p.slot, "skipped")
        else:
            queues.setdefault(lock_key(p), []).append(p)
    for done in results.values():
        on_done(done)
    gate = asyncio.Semaphore(concurrency)

    async def drain(queue: list[Planned]) -> None:
        for p in queue:
            async with gate:
                if stop.is_set():
                    return
                outcome = await run_slot(p.job, p.slot)
            done = Done(p.job, p.slot, outcome.status, outcome.rows, outcome.reason)
            results[(p.job.name, p.slot)] = done
            on_done(done)

    async with asyncio.TaskGroup() as group:
        for queue in queues.values():
            group.create_task(drain(queue))
    return [
        results.get((p.job.name, p.slot)) or Done(p.job, p.slot, "not_started") for p in planned
    ]


def summary(results: Sequence[Done]) -> dict[str, int]:
    """How many slots ended in each status, in a stable order."""
    counts = Counter(d.status for d in results)
    return dict(sorted(counts.items()))


async def run(
    manifest: Manifest,
    jobs: Sequence[Job],
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = False,
    rerun: bool = False,
    concurrency: int = 1,
    stop: asyncio.Event | None = None,
    on_plan: Callable[[Sequence[Planned]], None] = lambda p: None,
    on_done: Callable[[Done], None] = lambda d: None,
    metrics: MetricsSink | None = None,
    dsn: str | None = None,
) -> tuple[list[Planned], list[Done]]:
    """Open the database (and the actions the jobs use), plan, and unless ``dry_run`` run
    the backfill. Returns the plan and the results (empty for a dry run)."""
    async with wiring.open_database(dsn, max_size=concurrency + 1) as db:
        planned = await plan(db, jobs, start, end, now=wiring.utc_now())
        on_plan(planned)
        if dry_run:
            return planned, []
        # Only the actions these jobs use are opened.
        async with wiring.open_actions(replace(manifest, jobs=tuple(jobs))) as actions:
            executor = wiring.build_executor(
                db,
                manifest,
                templates=wiring.load_templates(manifest, jobs),
                actions=actions,
                metrics=metrics,
            )
            run_slot = executor_runner(executor, rerun=rerun)
            done = await backfill(
                planned,
                run_slot,
                rerun=rerun,
                concurrency=concurrency,
                stop=stop,
                on_done=on_done,
            )
    return planned, done
