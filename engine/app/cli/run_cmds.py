"""Commands that reach Postgres or the queue: run, runs, consume, db migrate. Their heavy
imports happen inside each command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.app.cli.args import FAILED, OK, load, parse_time, positive


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import wiring
    from engine.core.times import iso

    manifest = load(args).for_environment(args.env)
    outcome = asyncio.run(wiring.run_job(manifest, args.type, args.at, rerun=args.rerun))
    slot = iso(outcome.slot) if outcome.slot else "?"
    detail = f" rows={outcome.rows}" if outcome.rows is not None else ""
    if outcome.reason:
        detail += f" ({outcome.error_class}: {outcome.reason})"
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
    sys.stdout.write(wiring.format_runs(rows, history=args.history))
    return OK


def cmd_consume(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import consumer

    max_batches = 1 if args.once else args.max_batches
    manifest = load(args).for_environment(args.env)
    tally = asyncio.run(consumer.consume(manifest, max_batches=max_batches))
    print(tally.summary())
    # A bounded run reports its messages; a service stopped by a signal just stops.
    return OK if max_batches is None or tally.ok else FAILED


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import wiring

    applied = asyncio.run(wiring.migrate(None, Path(args.manifest).parent))
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return OK


def register(sub: Any) -> None:
    sp = sub.add_parser("run", help="run one slot of a job now (DATABASE_URL); exit 1 if it failed")
    sp.add_argument("type", help="message type or job name")
    sp.add_argument("--at", type=parse_time, help="the slot (default: the latest at or before now)")
    sp.add_argument("--env", help="use this environment's queue and bucket names")
    sp.add_argument(
        "--rerun",
        action="store_true",
        help="recompute the slot from the source as it stands now, even if it succeeded,"
        " replacing what earlier runs wrote",
    )
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("runs", help="the run ledger, newest first (DATABASE_URL)")
    sp.add_argument("--job", help="only this job (name)")
    sp.add_argument("--failed", action="store_true", help="only failed runs")
    sp.add_argument(
        "--history", action="store_true", help="every attempt, '*' marking each slot's current run"
    )
    sp.add_argument("--limit", type=int, default=50)
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser(
        "consume",
        help="pull the queue over Cloudflare's REST API and run each message"
        " (DATABASE_URL, CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, R2_*)",
    )
    sp.add_argument("--env", help="pull this environment's queue (default: the top level's)")
    bound = sp.add_mutually_exclusive_group()
    bound.add_argument(
        "--once", action="store_true", help="one batch, then exit 1 if any message failed"
    )
    bound.add_argument(
        "--max-batches", type=positive, metavar="N", help="at most N pulls (empty ones count)"
    )
    sp.set_defaults(func=cmd_consume)

    sp = sub.add_parser("db", help="database commands")
    dbsub = sp.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser(
        "migrate", help="apply cronwright's and sql/migrations/ (DATABASE_URL)"
    ).set_defaults(func=cmd_migrate)
