"""Commands about slots: ``slots`` (what became of each slot of a job) and ``reconcile``
(enqueue the missing ones). Their heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.app.cli.args import BAD_INPUT, OK, load, positive, slot_time


def cmd_slots(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import wiring
    from engine.core.times import iso
    from engine.runtime import accounting
    from engine.schedule.slots import cron_schedule

    manifest = load(args)
    job = manifest.find_job(args.job)
    if args.to <= args.start:
        print(f"error: --to {iso(args.to)} is not after --from {iso(args.start)}", file=sys.stderr)
        return BAD_INPUT
    # Slots not due yet have no status: the range stops at now.
    end = min(args.to, wiring.utc_now())
    slots = accounting.due_slots(cron_schedule(job), args.start, end)

    async def main() -> list[accounting.SlotStatus]:
        async with wiring.open_database(None, max_size=1) as db:
            return await accounting.statuses(db, job, slots)

    found = asyncio.run(main())
    if args.json:
        for s in found:
            print(json.dumps(s.as_json()))
    else:
        print(f"{'slot':<20}  {'status':<13}  attempts")
        for s in found:
            print(f"{iso(s.slot):<20}  {s.status:<13}  {s.attempts}")
    return OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from engine.app import transports, wiring
    from engine.app.reconciler import Reconciler, cron_enabled
    from engine.runtime.accounting import SlotStatus
    from engine.runtime.dispatch import Slot

    manifest = load(args).for_environment(args.env)
    environ = dict(os.environ)

    async def main() -> list[Slot]:
        async with (
            wiring.open_database(None, max_size=2) as db,
            transports.open_sender(manifest, args.transport, db, environ) as sender,
        ):
            reconciler = Reconciler(
                db,
                manifest,
                sender,
                clock=wiring.utc_now,
                environ=environ,
                grace_seconds=args.grace_seconds,
                include_disabled=args.include_disabled,
                dry_run=args.dry_run,
            )
            return await reconciler.run_once()

    if not (args.include_disabled or cron_enabled(manifest, environ)):
        print(
            f"the cron flag {manifest.worker.cron_flag} is off: nothing enqueued"
            " (--include-disabled to look anyway)",
            file=sys.stderr,
        )
        return OK
    slots = asyncio.run(main())
    status = "missing" if args.dry_run else "queued"
    for s in slots:
        line: dict[str, Any] = SlotStatus(s.job, s.slot, status, 0).as_json()
        print(json.dumps(line) if args.json else f"{line['job']} {line['slot']} {status}")
    if not args.json:
        verb = "would enqueue" if args.dry_run else "enqueued"
        print(f"{verb} {len(slots)} slot{'s' * (len(slots) != 1)}", file=sys.stderr)
    return OK


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "slots",
        help="every slot of a job in [--from, --to) with its status (DATABASE_URL)",
    )
    sp.add_argument("job", help="job name or message type")
    sp.add_argument("--from", dest="start", type=slot_time, required=True, help="first slot")
    sp.add_argument("--to", type=slot_time, required=True, help="end of the range (excluded)")
    sp.add_argument("--json", action="store_true", help="one JSON object per line")
    sp.set_defaults(func=cmd_slots)

    sp = sub.add_parser(
        "reconcile",
        help="enqueue the due slots that were never sent, by each job's catch_up policy"
        " (DATABASE_URL; CLOUDFLARE_* for the cloudflare transport)",
    )
    sp.add_argument("--dry-run", action="store_true", help="print what would be enqueued")
    sp.add_argument("--json", action="store_true", help="one JSON object per slot, as `slots`")
    sp.add_argument(
        "--include-disabled",
        action="store_true",
        help="ignore the cron flag being off (with --dry-run: a dry look)",
    )
    sp.add_argument("--env", help="this environment's queue and cron flag")
    sp.add_argument(
        "--transport",
        default="cloudflare",
        choices=("cloudflare", "postgres"),
        help="where to enqueue (default cloudflare: the queue's REST API)",
    )
    sp.add_argument(
        "--grace-seconds",
        type=positive,
        default=600,
        metavar="S",
        help="leave a due slot to the Worker's own message for S seconds (default 600)",
    )
    sp.set_defaults(func=cmd_reconcile)
