"""Commands about slots: ``slots`` (what became of each slot of the jobs) and
``reconcile`` (enqueue the missing ones). Both ask the scheduling core
(:mod:`engine.runtime.scheduling`). Their heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.app.cli.args import BAD_INPUT, DAY_SECONDS, OK, load, seconds, slot_time


def cmd_slots(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import transports, wiring
    from engine.core.times import iso
    from engine.runtime import scheduling
    from engine.runtime.slotstore import PgSlotStore

    manifest = load(args).for_environment(args.env)
    jobs = [manifest.find_job(args.job)] if args.job else list(manifest.jobs)
    if args.to <= args.start:
        print(f"error: --to {iso(args.to)} is not after --from {iso(args.start)}", file=sys.stderr)
        return BAD_INPUT
    now = wiring.utc_now()
    wanted = scheduling.due_slots_by_job(jobs, args.start, args.to, now)
    grace = scheduling.grace_for(transports.configured(args.transport, manifest))

    async def main() -> list[scheduling.SlotStatus]:
        async with wiring.open_database(None, max_size=1) as db:
            return await scheduling.statuses(PgSlotStore(db), wanted, now=now, grace=grace)

    found = sorted(asyncio.run(main()), key=lambda s: (s.slot, s.job.name))
    if args.json:
        for s in found:
            print(json.dumps(s.as_json()))
        return OK
    width = max((len(j.name) for j in jobs), default=3)
    print(f"{'job':<{width}}  {'slot':<20}  {'status':<13}  attempts")
    for s in found:
        print(f"{s.job.name:<{width}}  {iso(s.slot):<20}  {s.status:<13}  {s.attempts}")
    return OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import os
    from datetime import timedelta

    from engine.app import transports, wiring
    from engine.app.reconciler import Reconciler
    from engine.runtime import scheduling
    from engine.runtime.dispatch import Slot
    from engine.runtime.slotbook import SlotBook
    from engine.runtime.slotstore import PgSlotStore

    manifest = load(args).for_environment(args.env)
    environ = dict(os.environ)
    transport = transports.configured(args.transport, manifest, environ)
    grace = (
        timedelta(seconds=args.grace_seconds)
        if args.grace_seconds is not None
        else scheduling.grace_for(transport)
    )

    async def main() -> list[Slot]:
        async with contextlib.AsyncExitStack() as stack:
            db = await stack.enter_async_context(wiring.open_database(None, max_size=2))
            sender = None
            if not args.dry_run:  # a dry run sends nothing, and needs no credentials
                sender = await stack.enter_async_context(
                    transports.open_sender(manifest, transport, environ)
                )
            book = SlotBook(PgSlotStore(db), manifest.jobs, grace=grace, register=not args.dry_run)
            reconciler = Reconciler(
                db,
                manifest,
                sender,
                book,
                environ=environ,
                include_disabled=args.include_disabled,
                dry_run=args.dry_run,
            )
            return await reconciler.run_once(wiring.utc_now())

    if not (args.include_disabled or scheduling.cron_enabled(manifest, environ)):
        print(
            f"the cron flag {manifest.worker.cron_flag} is off: nothing enqueued"
            " (--include-disabled to look anyway)",
            file=sys.stderr,
        )
        return OK
    slots = asyncio.run(main())
    status = "missing" if args.dry_run else "queued"
    for s in slots:
        line: dict[str, Any] = scheduling.SlotStatus(s.job, s.slot, status).as_json()
        print(json.dumps(line) if args.json else f"{line['job']} {line['slot']} {status}")
    if not args.json:
        verb = "would enqueue" if args.dry_run else "enqueued"
        print(f"{verb} {len(slots)} slot{'s' * (len(slots) != 1)} on {transport}", file=sys.stderr)
    return OK


def _transport_option(sp: Any, what: str) -> None:
    sp.add_argument(
        "--transport",
        choices=("cloudflare", "postgres"),
        help=f"{what} (default: $CRONWRIGHT_TRANSPORT, else the manifest's transport)",
    )


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "slots",
        help="every due slot of the jobs in [--from, --to) with its status (DATABASE_URL)",
    )
    sp.add_argument("job", nargs="?", help="job name or message type (default: every job)")
    sp.add_argument("--from", dest="start", type=slot_time, required=True, help="first slot")
    sp.add_argument("--to", type=slot_time, required=True, help="end of the range (excluded)")
    sp.add_argument("--json", action="store_true", help="one JSON object per line")
    sp.add_argument("--env", help="this environment's cron flag")
    _transport_option(sp, "who sends the slots, which decides their grace period")
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
    _transport_option(sp, "where to enqueue")
    sp.add_argument(
        "--grace-seconds",
        type=seconds(0),
        metavar="S",
        help="how long a due slot with no record is left to its sender before it counts as"
        f" missing, 0 to {DAY_SECONDS} (postgres: 0; cloudflare: 600, the Worker records nothing)",
    )
    sp.set_defaults(func=cmd_reconcile)
