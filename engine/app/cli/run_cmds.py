"""Commands that reach Postgres: run, runs, db migrate. Their heavy
imports happen inside each command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.app.cli.args import FAILED, OK, load, positive, slot_time


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import wiring
    from engine.core.times import iso

    manifest = load(args).for_environment(args.env)
    outcome = asyncio.run(wiring.run_job(manifest, args.type, args.at, rerun=args.rerun))
    slot = iso(outcome.slot) if outcome.slot else "?"
    detail = f" rows={outcome.rows}" if outcome.rows is not None else ""
    if outcome.reason:
        reason = outcome.reason if args.verbose else wiring.without_detail(outcome.reason)
        # The reason names its class already when it came from the database.
        named = outcome.error_class is None or outcome.error_class in reason
        detail += f" ({reason})" if named else f" ({outcome.error_class}: {reason})"
    print(f"{outcome.type} slot {slot}: {outcome.status}{detail}")
    return OK if outcome.succeeded or outcome.status == "paused" else FAILED


def cmd_runs(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import wiring

    rows = asyncio.run(
        wiring.list_runs(
            None, job=args.job, failed_only=args.failed, limit=args.limit, history=args.history
        )
    )
    sys.stdout.write(wiring.format_runs(rows, history=args.history, verbose=args.verbose))
    return OK


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import wiring
    from engine.core.model import DEFAULT_MIGRATIONS

    # The project's folder is the manifest's `migrations:` (default sql/migrations beside
    # it, also when there is no manifest yet).
    manifest = Path(args.manifest)
    default = manifest.parent / DEFAULT_MIGRATIONS
    folder = load(args).migrations_dir if manifest.exists() else default
    applied = asyncio.run(wiring.migrate(None, folder, report=_print_now))
    if not applied:
        print("database is up to date")
    return OK


def _print_now(line: str) -> None:
    print(line, flush=True)  # a long migration shows what is done before it ends


def register(sub: Any) -> None:
    sp = sub.add_parser("run", help="run one slot of a job now (DATABASE_URL); exit 1 if it failed")
    sp.add_argument("type", help="message type or job name")
    sp.add_argument("--at", type=slot_time, help="the slot (default: the latest at or before now)")
    sp.add_argument("--env", help="use this environment's queue and bucket names")
    sp.add_argument(
        "--rerun",
        action="store_true",
        help="recompute the slot from the source as it stands now, even if it succeeded,"
        " replacing what earlier runs wrote",
    )
    sp.add_argument(
        "--verbose",
        action="store_true",
        help="show the server's DETAIL text of a failure, which may quote row values",
    )
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("runs", help="the run ledger, newest first (DATABASE_URL)")
    sp.add_argument("--job", help="only this job (name)")
    sp.add_argument("--failed", action="store_true", help="only failed runs")
    sp.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="at most N runs (default 50)"
    )
    sp.add_argument(
        "--verbose",
        action="store_true",
        help="show the server's DETAIL text, which may quote row values",
    )
    sp.add_argument(
        "--history", action="store_true", help="every attempt, '*' marking each slot's current run"
    )
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("db", help="database commands")
    dbsub = sp.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser(
        "migrate",
        help="apply cronwright's migrations, then the project's sql/migrations/*.sql in the"
        " order of their numbers; *.down.sql files are not run (DATABASE_URL)",
    ).set_defaults(func=cmd_migrate)
