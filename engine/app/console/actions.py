"""The console's actions, each through the operator's function that the CLI command
calls (:mod:`engine.app.operator`), recorded with who asked (``ui:NAME``) and when:

- pause / resume: ``cronwright pause`` / ``resume``;
- run a slot: ``cronwright enqueue JOB --at T``; rerun: ``... --rerun`` (a rerun request);
- replay a dead letter: ``cronwright dead-letters replay ID`` (re-enqueued).

An action sends the slot on the configured transport and returns: the consumers run it,
never the web request. Each returns a note code (:data:`NOTES`) for the page it leads
back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from engine.app import operator
from engine.app.console.views import Context, NotFound
from engine.core.model import Job

if TYPE_CHECKING:
    from engine.adapters.pg import Database

#: What a page says after an action (``?done=CODE``): a fixed sentence per code, so the
#: query string can only pick one of these.
NOTES = {
    "paused": "Paused: the job's slots from now on are skipped, and never caught up.",
    "already-paused": "The job was already paused; that pause is kept as it was.",
    "resumed": "Resumed: slots from now on run again (the paused ones stay skipped).",
    "not-paused": "The job was not paused.",
    "sent": "Sent to the queue: a consumer runs it.",
    "rerun": "Rerun requested: sent to the queue; a consumer recomputes the slot.",
    "replayed": "Dead letter re-enqueued: a consumer runs its slot again.",
    "replay-skipped": "Dead letter not replayed: it was replayed or purged already.",
}


@dataclass(frozen=True)
class Acted:
    note: str
    job: Job
    slot: datetime | None = None


async def pause(db: Database, ctx: Context, job: Job, reason: str, by: str) -> Acted:
    _, opened = await operator.pause_job(
        ctx.manifest, job.name, reason.strip() or None, by=by, db=db, clock=ctx.clock
    )
    return Acted("paused" if opened else "already-paused", job)


async def resume(db: Database, ctx: Context, job: Job, by: str) -> Acted:
    ended = await operator.resume_job(ctx.manifest, job.name, by=by, db=db, clock=ctx.clock)
    return Acted("resumed" if ended else "not-paused", job)


async def run(
    db: Database,
    ctx: Context,
    job: Job,
    slot: datetime,
    by: str,
    *,
    rerun: bool,
) -> Acted:
    await operator.enqueue_slot(
        ctx.manifest,
        job.name,
        slot,
        transport=ctx.transport,
        rerun=rerun,
        by=by,
        environ=ctx.environ,
        db=db,
        clock=ctx.clock,
    )
    return Acted("rerun" if rerun else "sent", job, slot)


async def replay(db: Database, ctx: Context, letter: int, by: str) -> Acted:
    [done] = await operator.replay_dead_letters(
        ctx.manifest,
        ids=[letter],
        in_place=False,
        transport=ctx.transport,
        environ=ctx.environ,
        by=by,
        db=db,
        clock=ctx.clock,
    )
    job = ctx.manifest.job_by_name(done.job or "")
    if job is None or done.slot is None:
        raise NotFound(f"dead letter {letter}: {done.detail}")
    return Acted("replayed" if done.status == "enqueued" else "replay-skipped", job, done.slot)
