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
from datetime import datetime
from typing import Any

from engine.app import wiring
from engine.core.model import Job, Manifest, Overlap
from engine.core.times import iso
from engine.runtime import pauses
from engine.runtime.executor import Executor
from engine.runtime.ledger import Db
from engine.runtime.metrics import MetricsSink
from engine.runtime.outcome import Outcome
from engine.schedule.slots import Schedule, cron_schedule

#: How a slot stands before the backfill: a ledger status, or missing / paused.
_STATUSES = """
SELECT slot, status FROM cronwright.runs
WHERE job = $1 AND slot >= $2 AND slot < $3
"""


@dataclass(frozen=True)
class Planned:
    job: Job
    slot: datetime
    status: str  # succeeded, failed, dead_lettered, running, missing or paused

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


def slots_between(
    job: Job, start: datetime, end: datetime, schedule: Schedule | None = None
) -> list[datetime]:
    """The job's slots in ``[start, end)``, oldest first."""
    schedule = schedule or cron_schedule(job)
    out = []
    t = start.replace(second=0, microsecond=0)
    if t < start or not schedule.matches(t):
        t = schedule.next_after(t) or end
    while t < end:
        out.append(t)
        t = schedule.next_after(t) or end
    return out


async def plan(db: Db, jobs: Sequence[Job], start: datetime, end: datetime) -> list[Planned]:
    """Every slot of ``jobs`` in ``[start, end)`` with its current status, by slot then job."""
    out: list[Planned] = []
    async with db.transaction() as tx:
        paused = await pauses.overlapping(tx, [j.name for j in jobs], start, end)
        for job in jobs:
            rows = await tx.fetch(_STATUSES, job.name, start, end)
            ledger = {r["slot"]: r["status"] for r in rows}
            for slot in slots_between(job, start, end):
                status = ledger.get(slot, "missing")
                if status != "succeeded" and any(p.covers(slot) for p in paused[job.name]):
                    status = "paused"
                out.append(Planned(job, slot, status))
    out.sort(key=lambda p: (p.slot, p.job.name))
    return out


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
        if p.status == "paused":
            results[(p.job.name, p.slot)] = Done(p.job, p.slot, "paused")
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
        planned = await plan(db, jobs, start, end)
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
