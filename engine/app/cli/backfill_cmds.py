"""``cronwright backfill``: run a range of slots through the executor (DATABASE_URL).

On a terminal it draws a progress bar (tqdm: one small pure-Python package with no
dependencies, against rich's several; a bar is all we need); otherwise it prints one line
per slot run. Ctrl-C stops starting slots and lets the running ones finish, so every slot
is done or not started; a second Ctrl-C abandons the running ones (their transactions roll
back: not started either).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from engine.app.cli.args import BAD_INPUT, FAILED, OK, load, positive, slot_time

if TYPE_CHECKING:
    from engine.app.backfill import Done, Planned


class _Report:
    """Where progress goes: a bar on a terminal, plain lines otherwise, nothing for --json."""

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self._stream = stream
        self._json = as_json
        self._bar: Any = None
        self._total = 0

    @property
    def interactive(self) -> bool:
        return not self._json and self._stream.isatty()

    def planned(self, planned: Sequence[Planned]) -> None:
        self._total = len(planned)
        if self.interactive:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, file=self._stream, unit="slot", leave=True)

    def done(self, d: Done) -> None:
        from engine.core.times import iso

        if self._bar is not None:
            self._bar.update(1)
            if d.failed:
                self._bar.write(
                    f"{d.job.name} {iso(d.slot)}: {d.status} ({d.reason})", file=self._stream
                )
        elif not self._json and d.status not in ("skipped", "paused"):
            rows = f" rows={d.rows}" if d.rows is not None else ""
            reason = f" ({d.reason})" if d.reason else ""
            print(f"{d.job.name} {iso(d.slot)}: {d.status}{rows}{reason}", file=self._stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _Discard:
    def emit(self, record: object) -> None:
        del record


def cmd_backfill(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from engine.app import backfill

    if args.start >= args.end:
        print(
            f"error: --from {args.start.isoformat()} is not before --to {args.end.isoformat()};"
            " give a non-empty range",
            file=sys.stderr,
        )
        return BAD_INPUT
    manifest = load(args).for_environment(args.env)
    jobs = [manifest.find_job(name) for name in dict.fromkeys(args.job)]
    report = _Report(sys.stderr, as_json=args.json)
    # The bar replaces the per-message metric lines on a terminal; the ledger keeps every run.
    metrics = _Discard() if report.interactive else None

    async def main() -> tuple[list[backfill.Planned], list[backfill.Done], bool]:
        stop = asyncio.Event()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
            stop.set()

        loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            planned, done = await backfill.run(
                manifest,
                jobs,
                args.start,
                args.end,
                dry_run=args.dry_run,
                rerun=args.rerun,
                concurrency=args.concurrency,
                stop=stop,
                on_plan=report.planned,
                on_done=report.done,
                metrics=metrics,
            )
        finally:
            loop.remove_signal_handler(signal.SIGINT)
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
    counts = backfill.summary(done)
    failed = any(d.failed for d in done)
    if args.json:
        out = {"slots": [d.as_dict() for d in done], "summary": counts, "stopped": stopped}
        print(json.dumps(out, indent=2))
    else:
        parts = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no slots"
        note = " (stopped by Ctrl-C)" if stopped else ""
        print(f"backfill of {len(done)} slots: {parts}{note}")
    return FAILED if failed or stopped else OK


def _print_plan(planned: Sequence[Planned], *, as_json: bool) -> None:
    from engine.core.times import iso

    if as_json:
        print(json.dumps([p.as_dict() for p in planned], indent=2))
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
        "--concurrency", type=positive, default=1, metavar="N", help="slots at once (default 1)"
    )
    sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    sp.add_argument("--env", help="use this environment's queue and bucket names")
    sp.set_defaults(func=cmd_backfill)
