"""What each page of the console shows, read from the database with the runtime's own
functions: slot statuses from the scheduling core (the answer ``cronwright slots``
gives), attempts from the run ledger, dead letters, pauses and what cronwright sent.

A grid page asks one question whatever the number of jobs and slots on it: the
scheduling core's :func:`~engine.runtime.scheduling.overview`, which answers with each
slot's facts (its status decided by the core's rules), each job's first sighting and open
runtime pause, from one statement; a slot's page asks it about that one slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.app.console import grid
from engine.app.console.ranges import BadQuery, Range
from engine.app.wiring import check_at, without_detail
from engine.core.errors import CronwrightError
from engine.core.model import Job, Manifest
from engine.core.times import Clock, iso
from engine.runtime import deadletters, dispatch, ledger, pauses, scheduling
from engine.runtime.pauses import Pause
from engine.runtime.ports import Db
from engine.runtime.scheduling import SlotStatus
from engine.runtime.slotstore import PgSlotStore
from engine.schedule import zones
from engine.schedule.describe import describe
from engine.schedule.slots import ScheduleKey, cron_schedule, schedule_key
from engine.sql import sqltemplates

#: A queue's depth by state, or None where the console cannot see it (Cloudflare's).
Depth = Callable[[], Awaitable[Mapping[str, int | None]]]
NEXT_SLOTS = 5
PAUSE_HISTORY = 50
LETTERS_SHOWN = 50
ATTEMPTS_SHOWN = 200


class NotFound(Exception):
    """No such job, slot or dead letter: answered 404 with this reason."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """What the pages need besides the database: fixed when the console starts."""

    manifest: Manifest
    transport: str  # where actions send slots; also decides the grace (grace_for)
    grace: timedelta
    templates: Mapping[str, str]  # each job's template source
    environ: Mapping[str, str]  # the process's: the sender's settings, the cron flag
    clock: Clock
    depth: Depth | None = None
    triggers: Mapping[str, str] = field(default_factory=dict)  # job name -> trigger


def find_job(manifest: Manifest, name: str) -> Job:
    try:
        return manifest.find_job(name)
    except CronwrightError as exc:
        raise NotFound(str(exc)) from None


# --- the grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    job: Job
    pause: datetime | None  # since when the job is paused at runtime (its open pause)
    cells: list[grid.Cell]


@dataclass(frozen=True)
class GridView:
    range: Range
    rows: list[Row]
    scale: grid.Scale
    ticks: list[grid.Tick]
    now_left: float | None  # where the clock stands on the track, if inside it
    page: int
    pages: int
    counts: dict[str, int]  # cells by status
    cells: int


async def grid_view(db: Db, ctx: Context, rng: Range) -> GridView:
    now = ctx.clock()
    jobs = [rng.job] if rng.job else list(ctx.manifest.jobs)
    wanted = scheduling.due_slots_by_job(jobs, rng.start, rng.end, now)
    try:
        split = grid.pages(wanted)
    except grid.TooManyCells as exc:
        raise BadQuery(str(exc)) from None
    if rng.page > len(split):
        raise BadQuery(f"page {rng.page}: there {_are(len(split), 'page')} in this range")
    mine = [wanted[i] for i in split[rng.page - 1]]
    seen = await scheduling.overview(PgSlotStore(db), mine, now=now, grace=ctx.grace)
    found = seen.statuses
    scale = grid.scale(rng.start, rng.end, [slots for _, slots in mine])
    by_job: dict[str, list[tuple[datetime, str, int]]] = {}
    counts = dict.fromkeys(scheduling.STATUSES, 0)
    for s in found:
        by_job.setdefault(s.job.name, []).append((s.slot, s.status, s.attempts))
        counts[s.status] += 1
    following = _following(mine)
    rows = [
        Row(
            job=job,
            pause=seen.jobs[job.name].paused_since,
            cells=grid.cells(scale, job, by_job.get(job.name, []), following.get(job.name)),
        )
        for job, _ in mine
    ]
    now_left = scale.left(now) if rng.start <= now < rng.end else None
    return GridView(
        range=rng,
        rows=rows,
        scale=scale,
        ticks=grid.ticks(scale),
        now_left=now_left,
        page=rng.page,
        pages=len(split),
        counts=counts,
        cells=len(found),
    )


def _are(n: int, what: str) -> str:
    return f"is 1 {what}" if n == 1 else f"are {n} {what}s"


def _following(wanted: Sequence[tuple[Job, Sequence[datetime]]]) -> dict[str, datetime]:
    """Each job's slot after its last one in the range (where its last cell ends), once
    per distinct schedule."""
    memo: dict[tuple[ScheduleKey, datetime], datetime | None] = {}
    out = {}
    for job, slots in wanted:
        if not slots:
            continue
        key = (schedule_key(job), slots[-1])
        if key not in memo:
            memo[key] = cron_schedule(job).next_after(slots[-1])
        if (nxt := memo[key]) is not None:
            out[job.name] = nxt
    return out


# --- a slot -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotView:
    status: SlotStatus
    local: str | None  # a zoned job's slot on its wall clock
    window: tuple[datetime, datetime] | None
    attempts: list[dict[str, Any]]
    letters: list[dict[str, Any]]
    sent: dict[str, Any] | None
    statements: list[tuple[str, dict[str, str]]]
    no_sql: str | None  # why there is no SQL to show


def parse_slot(job: Job, text: str, now: datetime) -> datetime:
    """A slot of ``job`` in a path: ISO 8601 UTC, one of the job's slots, due."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NotFound(f"{text!r} is not an ISO 8601 time (2026-10-31T10:00:00Z)") from None
    if t.tzinfo is None or t.utcoffset() != timedelta(0):
        raise NotFound(f"{text!r} is not a UTC time (end it with Z)")
    try:
        check_at(job, t, what="")
    except CronwrightError as exc:
        raise NotFound(str(exc)) from None
    if t > now:
        raise NotFound(f"slot {iso(t)} of {job.name} is not due yet")
    return t


async def slot_view(db: Db, ctx: Context, job: Job, slot: datetime) -> SlotView:
    now = ctx.clock()
    [status] = await scheduling.statuses(PgSlotStore(db), [(job, [slot])], now=now, grace=ctx.grace)
    attempts = [
        {**r, "error": without_detail(r["error"]) if r["error"] else None}
        for r in await ledger.runs(db, job=job.name, history=True, slot=slot, limit=ATTEMPTS_SHOWN)
    ]
    letters = [
        {**r, "reason": without_detail(str(r["reason"]))}
        for r in await deadletters.listing(db, job=job.name, slot=slot)
    ]
    sent = await dispatch.record(db, job.name, slot)
    statements: list[tuple[str, dict[str, str]]] = []
    no_sql = None
    if job.template is None:
        no_sql = f"runs the python action {job.action.python if job.action else '?'}: no SQL"
    else:
        try:
            statements = sqltemplates.shown(job, ctx.templates[job.template], slot)
        except CronwrightError as exc:
            no_sql = f"the template does not render: {exc}"
    start, end = job.bounds(slot)
    return SlotView(
        status=status,
        local=_local(job, slot),
        window=(start, end) if start and end else None,
        attempts=list(attempts),
        letters=letters,
        sent=sent,
        statements=statements,
        no_sql=no_sql,
    )


def _local(job: Job, t: datetime) -> str | None:
    if job.timezone is None:
        return None
    return f"{t.astimezone(zones.zone(job.timezone)):%Y-%m-%d %H:%M %Z}"


# --- a job ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    job: Job
    words: str
    next_slots: list[tuple[str, str | None]]  # UTC, local
    trigger: str | None
    pauses: list[Pause]
    letters: list[dict[str, Any]]
    depth: Mapping[str, int | None] | None
    history_start: datetime | None


async def job_view(db: Db, ctx: Context, job: Job) -> JobView:
    from engine.schedule import cron

    now = ctx.clock()
    parsed = cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)
    schedule = cron_schedule(job)
    upcoming: list[tuple[str, str | None]] = []
    t = now
    for _ in range(NEXT_SLOTS):
        nxt = schedule.next_after(t)
        if nxt is None:
            break
        upcoming.append((iso(nxt), _local(job, nxt)))
        t = nxt
    async with db.transaction() as tx:
        history = await pauses.history(tx, job.name, limit=PAUSE_HISTORY)
    letters = [
        {**r, "reason": without_detail(str(r["reason"]))}
        for r in await deadletters.listing(db, job=job.name, newest=LETTERS_SHOWN)
    ]
    first = (await PgSlotStore(db).first_seen([job.name])).get(job.name)
    return JobView(
        job=job,
        words=describe(parsed, job.timezone or "UTC"),
        next_slots=upcoming,
        trigger=ctx.triggers.get(job.name),
        pauses=history,
        letters=letters,
        depth=await ctx.depth() if ctx.depth is not None else None,
        history_start=scheduling.history_start(job, first),
    )
