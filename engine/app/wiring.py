"""The composition root: opens the database, builds the executor, and offers the async
entry points the CLI calls (``run``, ``runs``, ``db migrate``).

Importing this module does not import asyncpg (``engine.adapters.pg`` loads on first use), so the
CLI may import it at top level without slowing ``validate`` or ``generate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.errors import ConfigError, MessageError, without_detail
from engine.core.model import Job, Manifest
from engine.core.times import Clock, Sleep, as_utc, floor_minute, iso
from engine.runtime import deadletters, ledger, messages
from engine.runtime.deadletters import DeadLetterSink
from engine.runtime.executor import Action, Executor, RunWatch
from engine.runtime.metrics import JsonLines, MetricsSink
from engine.runtime.outcome import Outcome
from engine.schedule.slots import cron_schedule, latest_at_or_before

if TYPE_CHECKING:
    from engine.adapters.pg import Database
    from engine.runtime.warmup import WarmupCounterStore

__all__ = [
    "Outcome",
    "build_executor",
    "database_url",
    "format_runs",
    "list_runs",
    "load_templates",
    "migrate",
    "open_database",
    "run_job",
    "store_from_env",
    "without_detail",
]


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` from the environment, checked (a malformed one is refused without
    echoing its user name or password)."""
    from engine.adapters.pgurl import check  # no asyncpg: a malformed URL fails before any I/O

    url = (os.environ if environ is None else environ).get("DATABASE_URL", "").strip()
    if not url:
        raise ConfigError(
            "DATABASE_URL is not set", hint="export DATABASE_URL=postgresql://user@host/db"
        )
    check(url)
    return url


def utc_now() -> datetime:
    return datetime.now(UTC)


def load_templates(manifest: Manifest, jobs: Sequence[Job] | None = None) -> dict[str, str]:
    """Each job's template source, read once, relative to the manifest's folder."""
    base = Path(manifest.path).parent
    sources = {}
    for job in manifest.jobs if jobs is None else jobs:
        if job.template is None:  # a python action renders no SQL
            continue
        path = base / job.template
        try:
            sources[job.template] = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"job {job.name}: cannot read template {path}: {exc.strerror}"
            ) from exc
    return sources


@asynccontextmanager
async def open_database(dsn: str | None = None, *, max_size: int = 4) -> AsyncIterator[Database]:
    """The database for the executor. Its transactions keep their state local (SET LOCAL
    timeouts, transaction-scoped advisory locks; templates must not use session SET), so
    the pool skips the per-release session reset."""
    from engine.adapters.pg import Database  # asyncpg loads only for commands that use the database

    async with Database.open(dsn or database_url(), max_size=max_size, session_reset=False) as db:
        yield db


def build_executor(
    db: Database,
    manifest: Manifest,
    *,
    templates: Mapping[str, str],
    actions: Mapping[str, Action] | None = None,
    metrics: MetricsSink | None = None,
    dead_letters: DeadLetterSink | None = None,
    clock: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    watch: RunWatch | None = None,
) -> Executor:
    """An executor with production defaults: dead letters in ``cronwright.dead_letters``,
    metrics as JSON lines on stderr, the real clock and sleep. ``watch`` is told of each
    attempt (healthcheck pings)."""
    return Executor(
        db=db,
        manifest=manifest,
        templates=templates,
        actions=actions or {},
        dead_letters=dead_letters or deadletters.PgDeadLetters(db),
        metrics=metrics or JsonLines(sys.stderr),
        clock=clock,
        sleep=sleep,
        rng=rng or random.Random(),
        watch=watch,
    )


@asynccontextmanager
async def open_actions(
    manifest: Manifest, environ: Mapping[str, str] | None = None, *, clock: Clock = utc_now
) -> AsyncIterator[dict[str, Action]]:
    """The built-in actions the manifest uses, with their resources opened from the
    environment: the warmup counter store is R2 when R2_* is set, else a local directory
    (``.cronwright/r2/<bucket>`` beside the manifest, like wrangler's local persistence)."""
    if not any(j.action and j.action.name == "warmup-reset" for j in manifest.jobs):
        yield {}
        return
    from engine.runtime.warmup import WarmupReset

    env = os.environ if environ is None else environ
    bucket = manifest.bucket.bucket_name if manifest.bucket else None
    local = Path(manifest.path).parent / ".cronwright" / "r2" / (bucket or "warmup")
    store = store_from_env(env, bucket=bucket, local_dir=local, clock=clock)
    async with store:
        yield {"warmup-reset": WarmupReset(store)}


def store_from_env(
    environ: Mapping[str, str], *, bucket: str | None, local_dir: str | Path, clock: Clock
) -> WarmupCounterStore:
    """The R2 store when R2 is configured, else the local directory store. The caller
    owns the result: use it as ``async with``."""
    from engine.adapters.localstore import LocalDirectoryStore
    from engine.adapters.r2config import r2_settings_from_env

    settings = r2_settings_from_env(environ, bucket=bucket)
    if settings is None:
        return LocalDirectoryStore(local_dir, clock=clock)
    from engine.adapters.s3 import R2CounterStore  # boto3 is slow to import: only when needed

    return R2CounterStore(settings, clock=clock)


def check_at(job: Job, at: datetime, what: str = "--at ") -> None:
    """Refuse an ``--at`` (``what``: how the message names the time) that is not one of the
    job's slots, naming the nearest ones."""
    schedule = cron_schedule(job)
    if at.second or at.microsecond:
        raise MessageError(
            f"{what}{at.isoformat()} is not on a minute", hint=f"use {iso(floor_minute(at))}"
        )
    if schedule.matches(at):
        return
    earlier = latest_at_or_before(schedule, at)
    later = schedule.next_after(at)
    near = [f"{iso(t)} ({side})" for t, side in ((earlier, "earlier"), (later, "later")) if t]
    raise MessageError(
        f"{what}{iso(at)} is not a slot of {job.name} (cron '{job.cron}')",
        hint=f"the nearest slots are {' and '.join(near)}" if near else "it never fires",
    )


async def run_job(
    manifest: Manifest,
    type_: str,
    at: datetime | None = None,
    *,
    dsn: str | None = None,
    actions: Mapping[str, Action] | None = None,
    metrics: MetricsSink | None = None,
    clock: Clock = utc_now,
    rerun: bool = False,
) -> Outcome:
    """``cronwright run TYPE [--at T] [--rerun]``: run one slot (default: the latest at or
    before now) through the executor, retrying in-process. The slot succeeded when
    ``outcome.succeeded``. ``rerun`` recomputes a slot that already succeeded, as one
    rerun request (its retries included). Raises MessageError for a bad type or slot."""
    job = manifest.find_job(type_)
    data: dict[str, Any] = {"type": job.type}
    if at is not None:
        at = as_utc(at)
        check_at(job, at)
        data["scheduledFor"] = iso(at)
    msg = messages.resolve(data, manifest, now=clock())
    templates = load_templates(manifest, [job])
    # Resources open only when the caller brought none: a partial R2_* setting must not
    # break a run whose actions were passed in.
    given = contextlib.nullcontext(dict(actions)) if actions is not None else None
    async with (
        open_database(dsn, max_size=2) as db,
        given or open_actions(manifest, clock=clock) as own,
    ):
        executor = build_executor(
            db,
            manifest,
            templates=templates,
            actions=own,
            metrics=metrics,
            clock=clock,
        )
        return await executor.run_until_done(
            msg.job,
            msg.slot,
            message_id=f"cli-{iso(msg.slot)}",
            rerun=rerun,
        )


async def list_runs(
    dsn: str | None = None,
    job: str | None = None,
    failed_only: bool = False,
    limit: int = 50,
    history: bool = False,
) -> list[dict[str, Any]]:
    """``cronwright runs [--job J] [--failed] [--history]``: ledger rows, newest slot first."""
    async with open_database(dsn, max_size=1) as db:
        return list(
            await ledger.runs(db, job=job, failed_only=failed_only, limit=limit, history=history)
        )


def format_runs(
    rows: Sequence[Mapping[str, Any]], *, history: bool = False, verbose: bool = False
) -> str:
    """The ledger as a table, like pg_cron's ``job_run_details``; with ``history`` every
    attempt, ``*`` marking each slot's current run. The error column keeps the SQLSTATE,
    message and constraint; the server's DETAIL only when ``verbose``."""
    header: tuple[str, ...] = (
        "job",
        "slot",
        "status",
        "attempt",
        "rows",
        "duration_ms",
        "error_class",
        "error",
    )
    if history:
        header = ("current", *header)
    lines = [header]
    for r in rows:
        duration = r["duration_ms"]
        lines.append(
            ("*" if r["current"] else "",) * history
            + (
                str(r["job"]),
                iso(r["slot"]),
                str(r["status"]),
                str(r["attempt"]),
                "" if r["rows"] is None else str(r["rows"]),
                "" if duration is None else f"{duration:.1f}",
                r["error_class"] or "",
                _error_cell(r["error"] or "", verbose),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(out) + "\n"


def _error_cell(error: str, verbose: bool) -> str:
    text = error.replace("\n", " ")
    return text if verbose else without_detail(text)[:200]


async def migrate(
    dsn: str | None, folder: Path | None, report: Callable[[str], None] | None = None
) -> list[str]:
    """``cronwright db migrate``: cronwright's migrations, then the project's ``folder``;
    ``report`` gets a line per file skipped or applied. Returns the migrations applied now
    (empty when up to date)."""
    from engine.adapters.migrate import migrate_url

    return await migrate_url(dsn or database_url(), folder, report)
