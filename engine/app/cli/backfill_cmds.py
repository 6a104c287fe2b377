"""``cronwright backfill``: run a range of slots through the executor (DATABASE_URL).

Each slot's result is one line on stdout as it finishes: a sentence, or a JSON object with
``--json`` (then the summary goes to stderr, so stdout holds only the slots). When both
stdout and stderr are a terminal it draws a progress bar instead, and writes only the
failures above it (tqdm: one small pure-Python package with no dependencies, against rich's
several; a bar is all we need). Ctrl-C stops starting slots and lets the running ones
finish, so every slot is done or not started; a second Ctrl-C abandons the running ones
(their transactions roll back: not started either).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.app.cli.args import (
    BAD_INPUT,
    FAILED,
    MOST_CONSUMERS,
    OK,
    load,
    slot_time,
    whole_number,
)

if TYPE_CHECKING:
    from engine.app.backfill import Done, Planned


class _Report:
    """Where each slot's result goes: a bar on a terminal, else one line per slot."""

    def __init__(self, *, as_json: bool) -> None:
        self._json = as_json
        self._bar: Any = None
        self.interactive = not as_json and sys.stdout.isatty() and sys.stderr.isatty()

    def planned(self, planned: Sequence[Planned]) -> None:
        if self.interactive:
            from tqdm import tqdm

            self._bar = tqdm(total=len(planned), file=sys.stderr, unit="slot", leave=True)

    def done(self, d: Done) -> None:
        if self._bar is None:
            print(_line(d, as_json=self._json), flush=True)
            return
        self._bar.update(1)
        if d.failed:
            self._bar.write(_line(d, as_json=False), file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _line(d: Done, *, as_json: bool) -> str:
    from engine.core.times import iso

    if as_json:
        return json.dumps(d.as_dict())
    rows = f" rows={d.rows}" if d.rows is not None else ""
    reason = f" ({d.reason})" if d.reason else ""
    return f"{d.job.name} {iso(d.slot)}: {d.status}{rows}{reason}"


class _Discard:
    """The executor's metric line per attempt: the slot's own line stands for it here."""

    def emit(self, record: object) -> None:
        del record


def cmd_backfill(args: argparse.Namespace) -> int:
    import asyncio

    from engine.app import backfill
    from engine.app.signals import stop_then_cancel_on_sigint

    if args.start >= args.end:
        print(
            f"error: --from {args.start.isoformat()} is not before --to {args.end.isoformat()};"
            " give a non-empty range",
            file=sys.stderr,
        )
        return BAD_INPUT
    manifest = load(args).for_environment(args.env)
    jobs = [manifest.find_job(name) for name in dict.fromkeys(args.job)]
    report = _Report(as_json=args.json)

    async def main() -> tuple[list[backfill.Planned], list[backfill.Done], bool]:
        stop = asyncio.Event()
        try:
            with stop_then_cancel_on_sigint(stop):
                planned, done = await backfill.run(
                    manifest,
                    jobs,
                    args.start,
                    args.end,
                    dry_run=args.dry_run,
                    rerun=args.rerun,
                    concurrency=args.concurrency,
                    stop=stop,
                    on_plan=report.planned if not args.dry_run else lambda p: None,
                    on_done=report.done,
                    metrics=_Discard(),
                )
        finally:
            report.close()
        return planned, done, stop.is_set()

    try:
        planned, done, stopped = asyncio.run(main())
    except asyncio.CancelledError:
        print("backfill abandoned: running slots rolled back", file=sys.stderr)
        return FAILED
    if args.dry_run:
        _print_plan(planned, as_json=args.json)
        return OK
    if args.json:  # a line for every slot: those never started too
        for d in done:
            if d.status == "not_started":
                print(_line(d, as_json=True))
    counts = backfill.summary(done)
    parts = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no slots"
    note = " (stopped by Ctrl-C)" if stopped else ""
    print(f"backfill of {len(done)} slots: {parts}{note}", file=sys.stderr if args.json else None)
    return FAILED if any(d.failed for d in done) or stopped else OK


def _print_plan(planned: Sequence[Planned], *, as_json: bool) -> None:
    from engine.core.times import iso

    if as_json:
        for p in planned:
            print(json.dumps(p.as_dict()))
        return
    width = max((len(p.job.name) for p in planned), default=3)
    print(f"{'job'.ljust(width)}  {'slot'.ljust(20)}  status")
    for p in planned:
        print(f"{p.job.name.ljust(width)}  {iso(p.slot).ljust(20)}  {p.status}")


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "backfill",
        help="run every slot of jobs in [--from, --to) through the executor (DATABASE_URL);"
        " exit 1 if any slot failed",
    )
    sp.add_argument("job", nargs="+", help="job name or message type (several run side by side)")
    sp.add_argument("--from", dest="start", type=slot_time, required=True, help="first slot time")
    sp.add_argument("--to", dest="end", type=slot_time, required=True, help="end (excluded)")
    sp.add_argument("--dry-run", action="store_true", help="list the slots and their status")
    sp.add_argument("--rerun", action="store_true", help="also recompute slots that succeeded")
    sp.add_argument(
        "--concurrency",
        type=whole_number(1, MOST_CONSUMERS),
        default=1,
        metavar="N",
        help=f"slots at once, 1 to {MOST_CONSUMERS} (default 1)",
    )
    sp.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per slot on stdout instead of a sentence (the summary goes to"
        " stderr)",
    )
    sp.add_argument("--env", help="use this environment's queue and bucket names")
    sp.set_defaults(func=cmd_backfill)
