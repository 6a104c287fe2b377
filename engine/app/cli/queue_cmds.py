"""Commands of the local queue: ``serve`` (scheduler + consumers on Postgres) and
``enqueue`` (send the message the Worker would send). Heavy imports happen inside each
command."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from engine.app.cli.args import FAILED, OK, host, load, port, positive, slot_time


def serve_options(args: argparse.Namespace, *, scheduler: bool) -> Any:
    from engine.app.serve import Options

    return Options(
        consumers=args.consumers,
        scheduler=scheduler,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        grace_seconds=args.grace_seconds,
        lease_seconds=args.lease_seconds,
        reconcile_seconds=args.reconcile_interval or None,
    )


def run_local(args: argparse.Namespace, *, scheduler: bool) -> int:
    """``serve``, or ``consume --transport postgres`` (no scheduler)."""
    import asyncio

    from engine.app.serve import serve

    manifest = load(args).for_environment(args.env)

    def started(port: int | None) -> None:
        what = "scheduler and " if scheduler else ""
        where = f"; metrics on {args.metrics_host}:{port}/metrics" if port is not None else ""
        print(f"{what}{args.consumers} consumers on {manifest.queue.name}{where}", flush=True)

    tally = asyncio.run(serve(manifest, serve_options(args, scheduler=scheduler), started=started))
    print(tally.summary())
    return OK


def cmd_serve(args: argparse.Namespace) -> int:
    return run_local(args, scheduler=True)


def cmd_enqueue(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from engine.app import transports, wiring
    from engine.core.times import iso
    from engine.runtime import messages
    from engine.runtime.dispatch import Slot, dispatch

    manifest = load(args).for_environment(args.env)
    transport = transports.configured(args.transport)
    job = manifest.find_job(args.type)
    now = wiring.utc_now()
    data: dict[str, Any] = {"type": job.type}
    if args.at is not None:
        data["scheduledFor"] = iso(args.at)
    slot: datetime = messages.resolve(data, manifest, now=now).slot

    async def send() -> list[Slot]:
        async with (
            wiring.open_database(max_size=1) as db,
            transports.open_sender(manifest, transport, db, os.environ) as sender,
        ):
            return await dispatch(db, sender, [Slot(job, slot)], source="enqueue", force=True)

    sent = asyncio.run(send())
    for s in sent:
        print(f"enqueued {s.job.type} slot {iso(s.slot)} on {transport}")
    return OK if sent else FAILED


def add_local_options(sp: Any) -> None:
    sp.add_argument("--consumers", type=positive, default=4, metavar="N", help="workers (4)")
    sp.add_argument(
        "--metrics-port", type=port, metavar="P", help="serve /metrics and /healthz on P"
    )
    sp.add_argument(
        "--metrics-host",
        type=host,
        default="127.0.0.1",
        metavar="H",
        help="the address the metrics port binds (127.0.0.1; 0.0.0.0 opens it to the network)",
    )
    sp.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="on SIGTERM, how long running jobs may finish before they are released (30)",
    )
    sp.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="a message's lease, renewed while it runs; after a crash it comes back"
        " within this (60)",
    )


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "serve",
        help="run without Cloudflare: the scheduler and N consumers of the Postgres queue"
        " (DATABASE_URL)",
    )
    sp.add_argument("--env", help="use this environment's queue name and cron flag")
    add_local_options(sp)
    sp.add_argument(
        "--reconcile-interval",
        type=int,
        default=60,
        metavar="SECONDS",
        help="run the reconciler every SECONDS to enqueue due slots never sent (60; 0: off)",
    )
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser(
        "enqueue", help="send the message the Worker would send for one slot (DATABASE_URL)"
    )
    sp.add_argument("type", help="message type or job name")
    sp.add_argument("--at", type=slot_time, help="the slot (default: the latest at or before now)")
    sp.add_argument(
        "--transport",
        choices=("cloudflare", "postgres"),
        help="where to send (default: $CRONWRIGHT_TRANSPORT, else cloudflare)",
    )
    sp.add_argument("--env", help="use this environment's queue")
    sp.set_defaults(func=cmd_enqueue)
