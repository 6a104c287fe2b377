"""The operator's commands, as async entry points the CLI calls: pause and resume, dead
letters (list, replay, purge) and retention. Each opens the database it needs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.app import transports, wiring
from engine.app.wiring import utc_now
from engine.core.errors import MessageError
from engine.core.model import Manifest
from engine.core.times import Clock
from engine.runtime import deadletters, messages, pauses, retention
from engine.runtime.dispatch import Slot, dispatch
from engine.runtime.executor import Action
from engine.runtime.metrics import MetricsSink
from engine.runtime.pauses import Pause

if TYPE_CHECKING:
    from engine.adapters.pg import Database


async def pause_job(
    manifest: Manifest,
    name: str,
    reason: str | None,
    *,
    dsn: str | None = None,
    clock: Clock = utc_now,
) -> tuple[Pause, bool]:
    """``cronwright pause JOB``: (the open pause, whether this call opened it)."""
    job = manifest.find_job(name)
    async with wiring.open_database(dsn, max_size=1) as db, db.transaction() as tx:
        return await pauses.pause(tx, job.name, clock(), reason)


async def resume_job(
    manifest: Manifest, name: str, *, dsn: str | None = None, clock: Clock = utc_now
) -> Pause | None:
    """``cronwright resume JOB``: the pause it ended, or None when the job was not paused."""
    job = manifest.find_job(name)
    async with wiring.open_database(dsn, max_size=1) as db, db.transaction() as tx:
        return await pauses.resume(tx, job.name, clock())


async def open_pauses(manifest: Manifest, *, dsn: str | None = None) -> dict[str, Pause]:
    """Each job's open runtime pause (for ``cronwright schedule``)."""
    async with wiring.open_database(dsn, max_size=1) as db, db.transaction() as tx:
        return await pauses.open_pauses(tx, [j.name for j in manifest.jobs])


async def list_dead_letters(
    *, job: str | None = None, since: datetime | None = None, dsn: str | None = None
) -> list[dict[str, Any]]:
    async with wiring.open_database(dsn, max_size=1) as db:
        return await deadletters.listing(db, job=job, since=since)


async def purge_dead_letters(
    *, before: datetime, dsn: str | None = None, clock: Clock = utc_now
) -> int:
    async with wiring.open_database(dsn, max_size=1) as db:
        return await deadletters.purge(db, before=before, at=clock())


async def prune(
    manifest: Manifest,
    *,
    older_than_days: int | None = None,
    dsn: str | None = None,
    clock: Clock = utc_now,
) -> retention.Pruned:
    """``cronwright prune [--older-than DAYS]``: the manifest's retention, or DAYS for both."""
    async with wiring.open_database(dsn, max_size=1) as db:
        return await retention.prune(
            db,
            manifest,
            clock(),
            runs_days=older_than_days,
            dead_letters_days=older_than_days,
        )


@dataclass(frozen=True)
class Replayed:
    """What became of one dead letter: an outcome status (``--run``), ``enqueued``,
    ``skipped`` with the reason, or ``missing`` (no such id)."""

    id: int
    job: str | None
    slot: datetime | None
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "duplicate", "paused", "enqueued", "skipped")


async def replay_dead_letters(
    manifest: Manifest,
    *,
    ids: Sequence[int] | None,
    job: str | None = None,
    in_place: bool,
    transport: str | None = None,
    dsn: str | None = None,
    actions: Mapping[str, Action] | None = None,
    metrics: MetricsSink | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
) -> list[Replayed]:
    """``cronwright dead-letters replay ID... | --all [--job J] [--run]``.

    With ``in_place`` each letter's slot runs here through the executor (its retries
    included); otherwise it is re-enqueued on ``transport`` (dispatch with
    ``source="replay"``, forced past an earlier dispatch). Each letter is marked
    replayed after its run or send, so a crash in between leaves it pending, and the
    ledger turns a second replay of the same slot into a duplicate."""
    names = [j.name for j in manifest.jobs]
    job_name = manifest.find_job(job).name if job else None
    done: list[Replayed] = []
    async with wiring.open_database(dsn, max_size=2) as db:
        todo = await deadletters.pending(db, ids=ids, job=job_name, known_jobs=names, now=clock())
        for p in todo:
            if p.skip:
                status = "missing" if p.skip == deadletters.NO_SUCH_LETTER else "skipped"
                done.append(Replayed(p.id, p.job, p.slot, status, p.skip))
        runnable = [p for p in todo if not p.skip]
        if not runnable:
            return done
        if in_place:
            done += await _run_in_place(db, manifest, runnable, actions, metrics, clock)
        else:
            env = os.environ if environ is None else environ
            how = transports.configured(transport, manifest, env)
            async with transports.open_sender(manifest, how, env) as sender:
                for p in runnable:
                    assert p.job is not None and p.slot is not None
                    job_ = manifest.find_job(p.job)
                    slot = Slot(job_, p.slot, rerun=_rerun_of(p))
                    await dispatch(db, sender, [slot], source="replay", force=True)
                    marked = await deadletters.mark_replayed(
                        db, p.id, how=f"enqueue:{how}", at=clock()
                    )
                    detail = "" if marked else "(marked by a concurrent replay)"
                    done.append(Replayed(p.id, p.job, p.slot, "enqueued", detail))
    return sorted(done, key=lambda r: r.id)


def _rerun_of(p: deadletters.Pending) -> str | None:
    """The rerun request a dead-lettered message carried: replaying it in place finishes
    that rerun (once), rather than finding the slot's earlier success a duplicate."""
    try:
        rerun = messages.decode(p.body or "").get("rerun")
    except MessageError:
        return None
    return rerun if isinstance(rerun, str) and rerun.strip() else None


async def _run_in_place(
    db: Database,
    manifest: Manifest,
    todo: Sequence[deadletters.Pending],
    actions: Mapping[str, Action] | None,
    metrics: MetricsSink | None,
    clock: Clock,
) -> list[Replayed]:
    jobs = [manifest.find_job(p.job) for p in todo if p.job]
    templates = wiring.load_templates(manifest, jobs)
    given = contextlib.nullcontext(dict(actions)) if actions is not None else None
    out = []
    async with given or wiring.open_actions(manifest, clock=clock) as own:
        executor = wiring.build_executor(
            db, manifest, templates=templates, actions=own, metrics=metrics, clock=clock
        )
        for p in todo:
            assert p.job is not None and p.slot is not None
            outcome = await executor.run_until_done(
                manifest.find_job(p.job), p.slot, message_id=f"replay-{p.id}", rerun=_rerun_of(p)
            )
            detail = f"{outcome.error_class}: {outcome.reason}" if outcome.reason else ""
            if outcome.status != "retry":  # a retry recorded nothing: leave it pending
                await deadletters.mark_replayed(db, p.id, how="run", at=clock())
            out.append(Replayed(p.id, p.job, p.slot, outcome.status, detail))
    return out
