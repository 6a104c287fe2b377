"""The operator's commands, as async entry points the CLI and the web console call:
pause and resume, enqueue (a slot, or a rerun request), dead letters (list, replay,
purge) and retention. Each opens the database it needs, or uses the one it is given
(``db``: the console's). Whoever acts is recorded with what they did (``by``:
``cli:USER`` from the CLI, :func:`cli_actor`; ``ui:NAME`` from the console)."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.app import transports, wiring
from engine.app.wiring import utc_now
from engine.core.errors import MessageError
from engine.core.model import Manifest
from engine.core.times import Clock, iso
from engine.runtime import deadletters, messages, pauses, retention
from engine.runtime.dispatch import Slot, dispatch
from engine.runtime.executor import Action
from engine.runtime.metrics import MetricsSink
from engine.runtime.pauses import Pause

if TYPE_CHECKING:
    from engine.adapters.pg import Database


def cli_actor(environ: Mapping[str, str] | None = None) -> str:
    """Who acts from the command line: ``cli:`` and the login name ($USER, else the
    process's user), recorded with a pause, a resume, an enqueue or a replay."""
    env = os.environ if environ is None else environ
    name = (env.get("USER") or env.get("LOGNAME") or "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry for the uid (a bare container)
            name = str(os.getuid())
    return f"cli:{name}"


@asynccontextmanager
async def _database(db: Database | None, dsn: str | None, max_size: int) -> AsyncIterator[Database]:
    """``db`` when given (kept open), else one of our own for the block."""
    if db is not None:
        yield db
        return
    async with wiring.open_database(dsn, max_size=max_size) as own:
        yield own


async def pause_job(
    manifest: Manifest,
    name: str,
    reason: str | None,
    *,
    by: str | None = None,
    dsn: str | None = None,
    db: Database | None = None,
    clock: Clock = utc_now,
) -> tuple[Pause, bool]:
    """``cronwright pause JOB``: (the open pause, whether this call opened it)."""
    job = manifest.find_job(name)
    async with _database(db, dsn, 1) as d, d.transaction() as tx:
        return await pauses.pause(tx, job.name, clock(), reason, by=by)


async def resume_job(
    manifest: Manifest,
    name: str,
    *,
    by: str | None = None,
    dsn: str | None = None,
    db: Database | None = None,
    clock: Clock = utc_now,
) -> Pause | None:
    """``cronwright resume JOB``: the pause it ended, or None when the job was not paused."""
    job = manifest.find_job(name)
    async with _database(db, dsn, 1) as d, d.transaction() as tx:
        return await pauses.resume(tx, job.name, clock(), by=by)


async def enqueue_slot(
    manifest: Manifest,
    name: str,
    at: datetime | None,
    *,
    transport: str | None,
    rerun: bool = False,
    by: str | None = None,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
    db: Database | None = None,
    clock: Clock = utc_now,
) -> list[Slot]:
    """``cronwright enqueue JOB [--at T] [--rerun]``: send the message the Worker would
    send for one slot (default: the latest at or before now) on ``transport``, forced past
    an earlier dispatch; with ``rerun``, as a new rerun request (the consumer recomputes
    the slot even if it succeeded). The slot must be due and one of the job's
    (MessageError otherwise). Returns what was sent."""
    job = manifest.find_job(name)
    data: dict[str, Any] = {"type": job.type}
    if at is not None:
        data["scheduledFor"] = iso(at)
    slot = messages.resolve(data, manifest, now=clock()).slot
    env = os.environ if environ is None else environ
    how = transports.configured(transport, manifest, env)
    request = Slot(job, slot, rerun=messages.new_rerun_id() if rerun else None)
    source = "rerun" if rerun else "enqueue"
    async with (
        _database(db, dsn, 1) as d,
        transports.open_sender(manifest, how, env) as sender,
    ):
        return await dispatch(d, sender, [request], source=source, force=True, by=by)


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
    by: str | None = None,
    db: Database | None = None,
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
    async with _database(db, dsn, 2) as d:
        todo = await deadletters.pending(d, ids=ids, job=job_name, known_jobs=names, now=clock())
        for p in todo:
            if p.skip:
                status = "missing" if p.skip == deadletters.NO_SUCH_LETTER else "skipped"
                done.append(Replayed(p.id, p.job, p.slot, status, p.skip))
        runnable = [p for p in todo if not p.skip]
        if not runnable:
            return done
        if in_place:
            done += await _run_in_place(d, manifest, runnable, actions, metrics, clock, by)
        else:
            env = os.environ if environ is None else environ
            how = transports.configured(transport, manifest, env)
            async with transports.open_sender(manifest, how, env) as sender:
                for p in runnable:
                    assert p.job is not None and p.slot is not None
                    job_ = manifest.find_job(p.job)
                    slot = Slot(job_, p.slot, rerun=_rerun_of(p))
                    await dispatch(d, sender, [slot], source="replay", force=True, by=by)
                    marked = await deadletters.mark_replayed(
                        d, p.id, how=f"enqueue:{how}", at=clock(), by=by
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
    by: str | None,
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
                await deadletters.mark_replayed(db, p.id, how="run", at=clock(), by=by)
            out.append(Replayed(p.id, p.job, p.slot, outcome.status, detail))
    return out
