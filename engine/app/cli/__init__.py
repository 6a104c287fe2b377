"""The command line: parses arguments, calls a command, and maps errors to exit codes
(0 ok, 1 failed or stale, 2 bad input). Each command group lives in its own module with a
``register(subparsers)``; add a module to ``GROUPS`` to add commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine.app import logsecrets
from engine.app.cli import (
    accounting_cmds,
    action_cmds,
    backfill_cmds,
    build_cmds,
    init_cmds,
    ops_cmds,
    queue_cmds,
    run_cmds,
    ui_cmds,
)
from engine.app.cli.args import BAD_INPUT, FAILED, OK, Parser
from engine.core.errors import CronwrightError, ManifestErrors
from engine.core.scrub import scrub

GROUPS = (
    init_cmds,
    build_cmds,
    action_cmds,
    run_cmds,
    accounting_cmds,
    queue_cmds,
    ops_cmds,
    backfill_cmds,
    ui_cmds,
)


DESCRIPTION = "Recurring jobs from one jobs.yaml: Cloudflare cron config and a replay-safe runtime."
EXAMPLES = """\
examples:
  cronwright validate                                check jobs.yaml
  cronwright generate                                write generated/
  cronwright cron "30 7 * * MON-FRI"                 explain a cron expression
  DATABASE_URL=postgresql://... cronwright run count-signups --at 2026-10-31T10:00:00Z

Run `cronwright COMMAND --help` for a command's options. Exit codes: 0 ok, 1 failed or
stale, 2 bad input."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="cronwright",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-m", "--manifest", default="jobs.yaml", help="manifest path (default jobs.yaml)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # output still buffered meets a closed pipe here
    except (BrokenPipeError, BaseExceptionGroup) as exc:
        if not _closed_pipe(exc):
            raise
        # The reader went away (`cronwright schedule | head`): it has what it wanted. Later
        # writes, the interpreter's last flush included, go nowhere instead of failing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK


def _closed_pipe(exc: BaseException) -> bool:
    """A write to a reader that went away, raised directly or from inside a task group."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_closed_pipe(e) for e in exc.exceptions)
    return isinstance(exc, BrokenPipeError)


def _main(argv: Sequence[str] | None) -> int:
    secrets = logsecrets.install(os.environ)
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ManifestErrors as exc:
        print(str(exc), file=sys.stderr)
        print(
            f"{len(exc.errors)} problem{'s' if len(exc.errors) != 1 else ''} found", file=sys.stderr
        )
        return BAD_INPUT
    except CronwrightError as exc:
        print(f"error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return FAILED if getattr(exc, "transient", None) is not None else BAD_INPUT
