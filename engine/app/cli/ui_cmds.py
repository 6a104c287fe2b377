"""``cronwright ui``: the web console (:mod:`engine.app.console`) as a process of its own,
beside whatever runs the jobs. Its heavy imports happen inside the command."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.app.cli.args import OK, host, load, port


def cmd_ui(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from engine.app.cli.queue_cmds import configure_logging
    from engine.app.console import server

    configure_logging(args.log_level)
    manifest = load(args).for_environment(args.env)

    def started(url: str) -> None:
        print(f"console on {url}", file=sys.stderr, flush=True)

    asyncio.run(
        server.run(
            manifest,
            port=args.port,
            host=args.host,
            transport=args.transport,
            environ=dict(os.environ),
            started=started,
        )
    )
    return OK


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "ui",
        help="the web console: the slot grid, jobs, slots and actions (DATABASE_URL;"
        " CRONWRIGHT_UI_TOKEN to act)",
    )
    sp.add_argument(
        "--port", type=port, default=8080, metavar="P", help="the port (8080; 0: any free one)"
    )
    sp.add_argument(
        "--host",
        type=host,
        default="127.0.0.1",
        metavar="H",
        help="the address to bind (127.0.0.1; another needs CRONWRIGHT_UI_TOKEN)",
    )
    sp.add_argument(
        "--transport",
        choices=("cloudflare", "postgres"),
        help="where actions send slots, which also decides a due slot's grace, as for"
        " `slots` (default: $CRONWRIGHT_TRANSPORT, else the manifest's transport)",
    )
    sp.add_argument("--env", help="this environment's queue and cron flag")
    sp.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="what the console logs to stderr (info)",
    )
    sp.set_defaults(func=cmd_ui)
