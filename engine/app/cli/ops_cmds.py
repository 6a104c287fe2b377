"""The operator's commands: pause, resume, dead-letters (list, replay, purge) and prune.
They reach Postgres (DATABASE_URL); heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.app.cli.args import (
    FAILED,
    MOST_DAYS,
    OK,
    load,
    parse_time,
    positive,
    whole_number,
)


def cmd_pause(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator
    from engine.core.times import iso

    manifest = load(args)
    pause, opened = asyncio.run(
        operator.pause_job(manifest, args.job, args.reason, by=operator.cli_actor())
    )
    reason = f" ({pause.reason})" if pause.reason else ""
    if opened:
        print(f"{pause.job} paused from {iso(pause.paused_from)}{reason}")
    else:
        print(f"{pause.job} is already paused since {iso(pause.paused_from)}{reason}")
    return OK


def cmd_resume(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator
    from engine.core.times import iso

    manifest = load(args)
    pause = asyncio.run(operator.resume_job(manifest, args.job, by=operator.cli_actor()))
    if pause is None:
        print(f"{manifest.find_job(args.job).name} is not paused", file=sys.stderr)
        return FAILED
    assert pause.resumed_at is not None
    print(
        f"{pause.job} resumed at {iso(pause.resumed_at)}; slots from {iso(pause.paused_from)}"
        " until then stay paused (never caught up)"
    )
    return OK


def _cell(value: Any) -> str:
    from engine.core.times import iso

    if value is None:
        return ""
    return iso(value) if isinstance(value, datetime) else str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned columns; the last column is not padded."""
    lines = [list(columns)] + [[_cell(r[c]).replace("\n", " ") for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(out) + "\n"


def cmd_dead_letters_list(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator, wiring

    job = load(args).find_job(args.job).name if args.job else None
    rows = asyncio.run(operator.list_dead_letters(job=job, since=args.since))
    if not args.verbose:  # the server's DETAIL may quote row values
        rows = [{**r, "reason": wiring.without_detail(str(r["reason"]))} for r in rows]
    if args.json:
        for r in rows:
            print(json.dumps({k: _cell(v) if isinstance(v, datetime) else v for k, v in r.items()}))
    else:
        columns = ("id", "job", "slot", "error_class", "attempts", "created_at", "replayed_as")
        sys.stdout.write(table(rows, (*columns, "reason")))
    return OK


def cmd_dead_letters_replay(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator

    manifest = load(args).for_environment(args.env)
    if not args.ids and not args.all:
        raise _usage("name the dead letters to replay (IDs) or pass --all")
    if args.ids and (args.all or args.job):
        raise _usage("pass either IDs or --all [--job J], not both")
    done = asyncio.run(
        operator.replay_dead_letters(
            manifest,
            ids=args.ids or None,
            job=args.job,
            in_place=args.run,
            transport=args.transport,
            by=operator.cli_actor(),
        )
    )
    for r in done:
        slot = _cell(r.slot) or "?"
        detail = f" ({r.detail})" if r.detail else ""
        print(f"dead letter {r.id}: {r.job or '?'} slot {slot}: {r.status}{detail}")
    if not done:
        print("no dead letters to replay")
    return OK if all(r.ok for r in done) else FAILED


def cmd_dead_letters_purge(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator
    from engine.core.times import iso

    n = asyncio.run(operator.purge_dead_letters(before=args.before))
    print(f"purged {n} dead letter{'s' * (n != 1)} created before {iso(args.before)}")
    return OK


def cmd_prune(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator

    manifest = load(args)
    pruned = asyncio.run(operator.prune(manifest, older_than_days=args.older_than))
    runs = f"{pruned.runs} superseded run{'s' * (pruned.runs != 1)}"
    letters = (
        f"{pruned.dead_letters} replayed or purged dead letter{'s' * (pruned.dead_letters != 1)}"
    )
    if pruned.notifications:
        n = pruned.notifications
        runs += f", {n} notification{'s' * (n != 1)} sent or given up"
    if args.older_than == 0:
        print(f"deleted {runs} and {letters}, of any age")
        return OK
    keep = manifest.retention
    runs_days = keep.runs_days if args.older_than is None else args.older_than
    letters_days = keep.dead_letters_days if args.older_than is None else args.older_than
    print(f"deleted {runs} older than {_days(runs_days)} and {letters} older than"
          f" {_days(letters_days)}")  # fmt: skip
    return OK


def _days(n: int) -> str:
    return f"{n} day{'s' * (n != 1)}"


def _usage(message: str) -> Exception:
    from engine.core.errors import ConfigError

    return ConfigError(message, hint="see cronwright dead-letters replay --help")


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "pause", help="pause a job at runtime: its slots from now on are skipped (DATABASE_URL)"
    )
    sp.add_argument("job", help="job name or message type")
    sp.add_argument("--reason", help="why, kept with the pause")
    sp.set_defaults(func=cmd_pause)

    sp = sub.add_parser("resume", help="end a job's runtime pause (DATABASE_URL)")
    sp.add_argument("job", help="job name or message type")
    sp.set_defaults(func=cmd_resume)

    sp = sub.add_parser("dead-letters", help="list, replay or purge dead letters (DATABASE_URL)")
    dl = sp.add_subparsers(dest="dead_letters_command", required=True)
    p = dl.add_parser("list", help="dead letters not purged, oldest first")
    p.add_argument("--job", help="only this job (name or type)")
    p.add_argument(
        "--since",
        type=parse_time,
        help="only those created at or after this time (ISO 8601, years 1 to 9999 in UTC)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--verbose", action="store_true", help="show the server's DETAIL, which may quote rows"
    )
    p.set_defaults(func=cmd_dead_letters_list)

    p = dl.add_parser(
        "replay",
        help="re-enqueue dead letters on the transport, or run them here with --run;"
        " each is marked replayed (exit 1 if any failed again)",
    )
    p.add_argument("ids", nargs="*", type=positive, metavar="ID", help="dead letter ids (see list)")
    p.add_argument("--all", action="store_true", help="every dead letter not yet replayed")
    p.add_argument("--job", help="with --all: only this job")
    p.add_argument("--run", action="store_true", help="run each slot in place (DATABASE_URL, R2_*)")
    p.add_argument(
        "--transport",
        choices=("cloudflare", "postgres"),
        help="where to re-enqueue without --run (default: $CRONWRIGHT_TRANSPORT, else the"
        " manifest's transport)",
    )
    p.add_argument("--env", help="this environment's queue and bucket names")
    p.set_defaults(func=cmd_dead_letters_replay)

    p = dl.add_parser("purge", help="hide dead letters created before a time (retention deletes)")
    p.add_argument(
        "--before",
        type=parse_time,
        required=True,
        help="ISO 8601 time, years 1 to 9999 in UTC (a far one, 2100-01-01T00:00:00Z, hides"
        " them all)",
    )
    p.set_defaults(func=cmd_dead_letters_purge)

    sp = sub.add_parser(
        "prune",
        help="delete superseded runs and replayed or purged dead letters past retention"
        " (DATABASE_URL); the current run of each slot is kept",
    )
    sp.add_argument(
        "--older-than",
        type=whole_number(0, MOST_DAYS, "days"),  # 0: everything but what is kept
        metavar="DAYS",
        help=f"for both, 0 to {MOST_DAYS} (default: the manifest's retention, 30 and 90 days); 0"
        " deletes them whatever their age",
    )
    sp.set_defaults(func=cmd_prune)
