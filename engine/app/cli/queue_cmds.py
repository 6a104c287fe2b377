"""The long-running commands and the queue: ``serve`` (scheduler + consumers on the
Postgres queue), ``consume`` (consumers of either queue) and ``enqueue`` (send the message
the Worker would send). Both services are built by :func:`engine.app.service.run`, with
one set of options. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from engine.app.cli.args import (
    DAY_SECONDS,
    FAILED,
    MOST_CONSUMERS,
    OK,
    host,
    load,
    port,
    positive,
    seconds,
    slot_time,
    whole_number,
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """What a service logs goes to stderr, info and up by default; the HTTP client's
    line per request only at debug."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def run_service(args: argparse.Namespace, *, transport: str, scheduler: bool) -> int:
    import asyncio

    from engine.app import service

    configure_logging(args.log_level)
    manifest = load(args).for_environment(args.env)
    bounded = getattr(args, "max_batches", None)
    # A bounded run (--once, --max-batches) is a check, not the service: no loops beside it.
    reconcile = None if bounded else args.reconcile_interval or None
    options = service.Options(
        transport=transport,
        scheduler=scheduler,
        consumers=args.consumers,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        ui_port=args.ui_port,
        ui_host=args.ui_host,
        reconcile_seconds=float(reconcile) if reconcile else None,
        grace_seconds=args.grace_seconds,
        drain_seconds=args.drain_seconds,
        lease_seconds=args.lease_seconds,
        prune_seconds=None if bounded else service.DAY_SECONDS,
        notify_seconds=None if bounded else service.Options.notify_seconds,
        max_batches=bounded,
    )

    def started(port: int | None) -> None:
        what = "scheduler and consumers" if scheduler else "consumers"
        where = f"; metrics on {args.metrics_host}:{port}/metrics" if port is not None else ""
        print(f"{what} on the {transport} queue {manifest.queue.name}{where}", file=sys.stderr)

    tally = asyncio.run(service.run(manifest, options, started=started))
    print(tally.summary())
    # A bounded run reports its messages; a service stopped by a signal just stops.
    return OK if options.max_batches is None or tally.ok else FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    return run_service(args, transport="postgres", scheduler=True)


def cmd_consume(args: argparse.Namespace) -> int:
    from engine.app import transports
    from engine.core.errors import ConfigError

    transport = transports.configured(args.transport, load(args))
    if args.once:
        args.max_batches = 1
    if transport == "postgres" and args.max_batches:
        raise ConfigError(
            "--once and --max-batches bound pulls from Cloudflare, not the postgres queue",
            hint="stop a postgres consumer with SIGTERM",
        )
    return run_service(args, transport=transport, scheduler=False)


def cmd_enqueue(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import operator, transports
    from engine.core.times import iso

    manifest = load(args).for_environment(args.env)
    transport = transports.configured(args.transport, manifest)
    sent = asyncio.run(
        operator.enqueue_slot(
            manifest,
            args.type,
            args.at,
            transport=transport,
            rerun=args.rerun,
            by=operator.cli_actor(),
        )
    )
    for s in sent:
        request = f" (rerun request {s.rerun})" if s.rerun else ""
        print(f"enqueued {s.job.type} slot {iso(s.slot)}{request} on {transport}")
    return OK if sent else FAILED


def add_service_options(sp: Any, *, reconcile_default: int) -> None:
    """The options of every long-running command, each with one meaning."""
    sp.add_argument("--env", help="use this environment's queue names and cron flag")
    sp.add_argument(
        "--consumers",
        "--concurrency",
        dest="consumers",
        type=whole_number(1, MOST_CONSUMERS),
        metavar="N",
        help=f"jobs this process runs at once, 1 to {MOST_CONSUMERS} (postgres: 4; cloudflare:"
        " queue.consumer.max_concurrency, else max_batch_size)",
    )
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
        "--ui-port",
        type=port,
        metavar="P",
        help="serve the web console on P (read-only unless CRONWRIGHT_UI_TOKEN is set)",
    )
    sp.add_argument(
        "--ui-host",
        type=host,
        default="127.0.0.1",
        metavar="H",
        help="the address the console binds (127.0.0.1; another needs CRONWRIGHT_UI_TOKEN)",
    )
    sp.add_argument(
        "--reconcile-interval",
        type=whole_number(0, DAY_SECONDS, "seconds"),
        default=reconcile_default,
        metavar="SECONDS",
        help=f"enqueue the due slots never sent, every SECONDS, a whole number up to {DAY_SECONDS}"
        f" ({reconcile_default}; 0: off; see `cronwright reconcile`)",
    )
    sp.add_argument(
        "--grace-seconds",
        type=seconds(0),
        metavar="S",
        help="how long a due slot with no record is left to its sender before it counts as"
        f" missing, 0 to {DAY_SECONDS} (postgres: 0, the scheduler records what it sends;"
        " cloudflare: 600)",
    )
    sp.add_argument(
        "--drain-seconds",
        type=seconds(0),
        default=30.0,
        metavar="S",
        help="on SIGTERM, how long running jobs may finish before they are released, 0 (at"
        f" once) to {DAY_SECONDS} (30)",
    )
    sp.add_argument(
        "--lease-seconds",
        type=seconds(1),
        default=60.0,
        metavar="S",
        help="postgres: a message's lease, renewed while it runs; after a crash it comes"
        f" back within this, 1 to {DAY_SECONDS} (60)",
    )
    sp.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="what the service logs to stderr (info)",
    )


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "serve",
        help="run without Cloudflare: the scheduler and N consumers of the Postgres queue"
        " (DATABASE_URL)",
    )
    add_service_options(sp, reconcile_default=60)
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser(
        "consume",
        help="run each message of the queue: pulled over Cloudflare's REST API"
        " (DATABASE_URL, CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, R2_*), or from the"
        " local Postgres queue with --transport postgres",
    )
    bound = sp.add_mutually_exclusive_group()
    bound.add_argument(
        "--once", action="store_true", help="one pull, then exit 1 if any message failed"
    )
    bound.add_argument(
        "--max-batches", type=positive, metavar="N", help="at most N pulls (empty ones count)"
    )
    sp.add_argument(
        "--transport",
        choices=("cloudflare", "postgres"),
        help="the queue to consume (default: $CRONWRIGHT_TRANSPORT, else the manifest's transport)",
    )
    add_service_options(sp, reconcile_default=60)
    sp.set_defaults(func=cmd_consume)

    sp = sub.add_parser(
        "enqueue", help="send the message the Worker would send for one slot (DATABASE_URL)"
    )
    sp.add_argument("type", help="message type or job name")
    sp.add_argument("--at", type=slot_time, help="the slot (default: the latest at or before now)")
    sp.add_argument(
        "--transport",
        choices=("cloudflare", "postgres"),
        help="where to send (default: $CRONWRIGHT_TRANSPORT, else the manifest's transport)",
    )
    sp.add_argument(
        "--rerun",
        action="store_true",
        help="as a rerun request: the consumer recomputes the slot even if it succeeded",
    )
    sp.add_argument("--env", help="use this environment's queue")
    sp.set_defaults(func=cmd_enqueue)
