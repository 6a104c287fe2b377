"""Commands that read the manifest only: validate, generate, check, schedule, cron, render.
None of them imports asyncpg, boto3 or the HTTP client."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.app.cli import action_cmds
from engine.app.cli.args import (
    FAILED,
    OK,
    load,
    out_dir,
    positive,
    slot_time,
    slot_time_as_given,
)
from engine.core.errors import ConfigError
from engine.core.model import Manifest

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from engine.schedule.cron import Cron
    from engine.schedule.slots import Schedule


def cmd_validate(args: argparse.Namespace) -> int:
    m = load(args)
    print(f"{args.manifest}: ok ({len(m.jobs)} job{'s' if len(m.jobs) != 1 else ''})")
    return OK


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.codegen import generate

    out = out_dir(args)
    manifest = load(args)
    files = generate.render(manifest, out_dir=out)
    if not generate.diff(files, out):
        print(f"{out}/ is up to date")
    else:
        generate.write(files, out)
        print(f"wrote {out}/: {', '.join(files)}")
    if not manifest.cloudflare:
        print(
            f"skipped the Worker's files ({', '.join(generate.worker_files(manifest))}):"
            f" {args.manifest} has no worker: block, so `cronwright serve` runs the jobs;"
            " add one to deploy on Cloudflare"
        )
    return OK


def cmd_check(args: argparse.Namespace) -> int:
    from engine.codegen import generate

    out = out_dir(args)
    delta = generate.diff(generate.render(load(args), out_dir=out), out)
    if delta:
        sys.stdout.write(delta)
        print(f"\n{out}/ is stale: run `{_generate_command(args)}`", file=sys.stderr)
        return FAILED
    print(f"{out}/ matches {args.manifest}")
    return OK


def _generate_command(args: argparse.Namespace) -> str:
    """The ``generate`` that freshens what ``check`` read: same manifest, same --out."""
    words = ["cronwright"]
    if args.manifest != "jobs.yaml":
        words += ["-m", shlex.quote(args.manifest)]
    words.append("generate")
    if args.out:
        words += ["--out", shlex.quote(args.out)]
    return " ".join(words)


def cmd_schedule(args: argparse.Namespace) -> int:
    from engine.codegen import generate
    from engine.schedule import fold, slots
    from engine.schedule.slots import cron_schedule

    m = load(args)
    at = args.at or datetime.now(UTC)
    runtime = _runtime_pauses(m)
    folded = generate.fold_of(m) if m.cloudflare else None
    print(_project_header(m))
    for job in m.jobs:
        schedule = cron_schedule(job)
        paused = "  (paused)" if job.paused else ""
        print(f"{job.name}  [{job.type}]{paused}")
        if job.name in runtime:
            print(f"  pause    {runtime[job.name]}")
        print(f"  cron     {job.cron}")
        print(f"  zone     {job.timezone or 'UTC'}")
        if folded:
            print(f"  trigger  {generate.job_trigger(folded, job)}")
        settle = job.settle_seconds if slots.settles(job) else None
        if settle is not None:
            print(f"  settles  day D at its first run at or after D+1 00:00 + {settle}s")
        t = at
        for _ in range(args.next):
            nxt = _next_after(schedule, t)
            if nxt is None:
                break
            day = slots.day_settled_by(schedule, nxt, settle) if settle is not None else None
            note = f"  settles {day.isoformat()}" if day else ""
            print(f"  next     {nxt.strftime('%Y-%m-%dT%H:%MZ %a')}{note}")
            t = nxt
    if folded is None:
        return OK
    figures = fold.stats(folded, [j for j in m.jobs if not j.paused])
    state = "folded" if folded.folded else "one per schedule"
    print(
        f"\ntriggers: {len(folded.triggers)} of a budget of {m.trigger_budget} ({state}; "
        f"invocations per day averaged over {fold.REFERENCE_YEAR})"
    )
    for trig in folded.triggers:
        runs, wasted = figures[trig.cron]
        print(f"{trig.cron}  {runs:.2f}/day  wasted {wasted:.2f}/day  {', '.join(trig.types)}")
    return OK


def _project_header(m: Manifest) -> str:
    """What the manifest's defaults came to: the names a user did not have to write."""
    from engine.codegen.wrangler import flag

    q, w = m.queue, m.worker
    dlq = f" (dead letters: {q.dead_letter_queue})" if m.cloudflare else ""
    worker = w.name if m.cloudflare else "none (no worker: block; nothing for Cloudflare)"
    return (
        f"project    {m.name}\n"
        f"transport  {m.transport.value}\n"
        f"queue      {q.name}{dlq}\n"
        f'cron flag  {w.cron_flag} (default "{flag(w.cron_enabled)}")\n'
        f"worker     {worker}\n"
    )


def _runtime_pauses(m: Any) -> dict[str, str]:
    """Each job's open runtime pause (``cronwright pause``), described; read from
    Postgres only when DATABASE_URL is set (the manifest's ``paused`` is shown always)."""
    import os

    if not os.environ.get("DATABASE_URL", "").strip():
        return {}
    import asyncio

    from engine.app import operator
    from engine.core.errors import CronwrightError
    from engine.core.times import iso

    try:
        found = asyncio.run(operator.open_pauses(m))
    except CronwrightError as exc:  # the manifest's schedule is still worth showing
        print(f"warning: runtime pauses not shown: {exc}", file=sys.stderr)
        return {}
    return {
        job: f"paused at runtime since {iso(p.paused_from)}"
        + (f" ({p.reason})" if p.reason else "")
        for job, p in found.items()
    }


def cmd_cron(args: argparse.Namespace) -> int:
    from engine.schedule import cron
    from engine.schedule.describe import describe

    c = cron.parse(args.expr, allow_both_day_fields=args.allow_both_day_fields)
    zone = _zone(args.timezone) if args.timezone else None
    schedule: Schedule = c
    if zone is not None:
        from engine.core.model import Dst
        from engine.schedule.zones import ZonedSchedule

        schedule = ZonedSchedule(c, args.timezone, Dst())  # a job's default DST rules
    print(f"expression  {args.expr}")
    print(f"canonical   {c.canonical}")
    print(f"means       {describe(c, args.timezone or 'UTC')}")
    t = args.at or datetime.now(UTC)
    t = (t.replace(tzinfo=zone or UTC) if t.tzinfo is None else t).astimezone(UTC)
    for i in range(args.next):
        nxt = _next_after(schedule, t)
        if nxt is None:
            print("never fires" if i == 0 else "next        none before the year 10000")
            break
        print(f"next        {_slot_in(nxt, zone, c) if zone else nxt.strftime(_UTC_SLOT)}")
        t = nxt
    return OK


_UTC_SLOT = "%Y-%m-%dT%H:%MZ %a"


def _next_after(schedule: Schedule, t: datetime) -> datetime | None:
    """The schedule's next slot after ``t``; None past datetime's last year, where a zone's
    clock overflows (``--next`` 8000 of a yearly cron on New York's clock)."""
    try:
        return schedule.next_after(t)
    except OverflowError:
        return None


def _zone(name: str) -> ZoneInfo:
    """``--timezone``'s zone; an unknown name is bad input naming the closest ones."""
    from engine.core.errors import ConfigError
    from engine.schedule import zones

    problem = zones.zone_problem(name)
    if problem is not None:
        raise ConfigError(problem[0], hint=problem[1], path="--timezone")
    return zones.zone(name)


def _slot_in(t: datetime, zone: ZoneInfo, c: Cron) -> str:
    """A slot on the zone's clock, its UTC instant, and what DST did to it, if anything."""
    local = t.astimezone(zone)
    text = f"{local.isoformat(timespec='minutes')} {local:%a}  ({t:%Y-%m-%dT%H:%MZ})"
    if not c.matches(local.replace(tzinfo=UTC, fold=0)):
        return f"{text}  DST gap: the cron's time did not exist that day; it runs as the gap ends"
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        return f"{text}  DST overlap: this time occurs twice that day; it runs the first time"
    return text


def cmd_render(args: argparse.Namespace) -> int:
    from engine.sql import sqltemplates

    m = load(args)
    job = m.find_job(args.type)
    if job.action and job.action.python:
        print(action_cmds.describe_call(m, job, job.action.python, args.at))
        return OK
    if job.template is None:
        raise ConfigError(f"job {job.name} has no SQL template")
    source = (Path(args.manifest).parent / job.template).read_text(encoding="utf-8")
    statements = sqltemplates.shown(job, source, args.at)
    start, end = job.bounds(args.at)
    window = f" window [{start.isoformat()}, {end.isoformat()})" if start and end else ""
    print(f"-- {job.type} slot {args.at.isoformat()}{window}")
    for i, (sql, params) in enumerate(statements, 1):
        print(f"-- statement {i}")
        print(sql + ";")
        print("-- params: " + json.dumps(params))
    return OK


def register(sub: Any) -> None:
    sub.add_parser("validate", help="check jobs.yaml; print every problem").set_defaults(
        func=cmd_validate
    )
    for name, func, text in (
        ("generate", cmd_generate, "write generated/ from jobs.yaml"),
        ("check", cmd_check, "exit 1 with a diff when generated/ is stale"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--out", help="output directory (default: generated/ beside the manifest)")
        sp.set_defaults(func=func)

    sp = sub.add_parser("schedule", help="each job's canonical cron, trigger and next slots")
    sp.add_argument(
        "--next", type=positive, default=3, metavar="N", help="show N next slots (default 3)"
    )
    sp.add_argument(
        "--at",
        type=slot_time,
        help="start from this time (default now), from 1970 to a year after now as a slot",
    )
    sp.set_defaults(func=cmd_schedule)

    sp = sub.add_parser(
        "cron", help="explain a Cloudflare cron expression in words, with its next slots"
    )
    sp.add_argument("expr", help='the expression, quoted: "30 7 * * MON-FRI"')
    sp.add_argument(
        "--next", type=positive, default=5, metavar="N", help="show N next slots (default 5)"
    )
    sp.add_argument(
        "--timezone",
        metavar="ZONE",
        help="read the cron on this IANA zone's clock, as a job's timezone: does"
        " (default UTC); slots are shown in it, with their UTC instants",
    )
    sp.add_argument(
        "--at",
        type=slot_time_as_given,
        help="start from this time (default now), from 1970 to a year after now as a slot;"
        " without an offset it is in --timezone",
    )
    sp.add_argument(
        "--allow-both-day-fields",
        action="store_true",
        help="accept day-of-month and day-of-week both restricted (fires when either matches)",
    )
    sp.set_defaults(func=cmd_cron)

    sp = sub.add_parser(
        "render", help="print a job's SQL and bind parameters for a slot (no database)"
    )
    sp.add_argument("type", help="message type or job name")
    sp.add_argument(
        "--at", type=slot_time, required=True, help="the slot, e.g. 2026-10-31T10:00:00Z"
    )
    sp.set_defaults(func=cmd_render)
