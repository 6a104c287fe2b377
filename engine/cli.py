"""The command line. The only place that calls asyncio.run and maps errors to exit codes:
0 ok, 1 failed or stale, 2 bad input. validate/generate/check/schedule/cron/render never
import asyncpg or boto3, so they start fast."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import CronwrightError, ManifestErrors

OK, FAILED, BAD_INPUT = 0, 1, 2


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 time (2026-10-31T10:00:00Z)"
        ) from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def _out_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else Path(args.manifest).parent / "generated"


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from engine.manifest import load

    return load(args.manifest)


def cmd_validate(args: argparse.Namespace) -> int:
    m = _load(args)
    print(f"{args.manifest}: ok ({len(m.jobs)} jobs)")
    return OK


def cmd_generate(args: argparse.Namespace) -> int:
    from engine import generate

    out = _out_dir(args)
    files = generate.render(_load(args), out_dir=out)
    if not generate.diff(files, out):
        print(f"{out}/ is up to date")
        return OK
    generate.write(files, out)
    print(f"wrote {out}/: {', '.join(files)}")
    return OK


def cmd_check(args: argparse.Namespace) -> int:
    from engine import generate

    out = _out_dir(args)
    delta = generate.diff(generate.render(_load(args), out_dir=out), out)
    if delta:
        sys.stdout.write(delta)
        print(f"\n{out}/ is stale: run `make generate` and commit the result", file=sys.stderr)
        return FAILED
    print(f"{out}/ matches {args.manifest}")
    return OK


def cmd_schedule(args: argparse.Namespace) -> int:
    from engine import cron, generate

    m = _load(args)
    at = args.at or datetime.now(UTC)
    for job in m.jobs:
        c = cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)
        paused = "  (paused)" if job.paused else ""
        print(f"{job.name}  [{job.type}]{paused}")
        print(f"  cron     {job.cron}")
        print(f"  trigger  {generate.trigger_of(job)}")
        t = at
        for _ in range(args.next):
            nxt = c.next_after(t)
            if nxt is None:
                break
            print(f"  next     {nxt.strftime('%Y-%m-%dT%H:%MZ %a')}")
            t = nxt
    return OK


def cmd_cron(args: argparse.Namespace) -> int:
    from engine import cron

    c = cron.parse(args.expr, allow_both_day_fields=args.allow_both_day_fields)
    print(f"expression  {args.expr}")
    print(f"canonical   {c.canonical}")
    t = args.at or datetime.now(UTC)
    for _ in range(args.next):
        nxt = c.next_after(t)
        if nxt is None:
            print("never fires")
            break
        print(f"next        {nxt.strftime('%Y-%m-%dT%H:%MZ %a')}")
        t = nxt
    return OK


def cmd_render(args: argparse.Namespace) -> int:
    from engine import sqltemplates

    m = _load(args)
    job = m.find_job(args.type)
    source = (Path(args.manifest).parent / job.template).read_text(encoding="utf-8")
    rendered = sqltemplates.render(job, source, args.at)
    start, end = job.window.bounds(args.at)
    print(
        f"-- {job.type} slot {args.at.isoformat()} window [{start.isoformat()}, {end.isoformat()})"
    )
    for i, stmt in enumerate(sqltemplates.split_statements(rendered), 1):
        print(f"-- statement {i}")
        print(stmt.sql + ";")
        print("-- params: " + json.dumps({f"${n}": str(v) for n, v in enumerate(stmt.args, 1)}))
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from engine import runtime
    from engine.slots import iso

    manifest = _load(args).for_environment(args.env)
    outcome = asyncio.run(runtime.run_job(manifest, args.type, args.at))
    slot = iso(outcome.slot) if outcome.slot else "?"
    detail = f" rows={outcome.rows}" if outcome.rows is not None else ""
    if outcome.reason:
        detail += f" ({outcome.error_class}: {outcome.reason})"
    print(f"{outcome.type} slot {slot}: {outcome.status}{detail}")
    return OK if outcome.succeeded else FAILED


def cmd_runs(args: argparse.Namespace) -> int:
    import asyncio

    from engine import runtime

    rows = asyncio.run(
        runtime.list_runs(None, job=args.job, failed_only=args.failed, limit=args.limit)
    )
    sys.stdout.write(runtime.format_runs(rows))
    return OK


def cmd_consume(args: argparse.Namespace) -> int:
    import asyncio

    from engine import consumer

    max_batches = 1 if args.once else args.max_batches
    manifest = _load(args).for_environment(args.env)
    tally = asyncio.run(consumer.consume(manifest, max_batches=max_batches))
    print(tally.summary())
    # A bounded run reports its messages; a service stopped by a signal just stops.
    return OK if max_batches is None or tally.ok else FAILED


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from engine import runtime

    applied = asyncio.run(runtime.migrate(None, Path(args.manifest).parent))
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cronwright", description=__doc__.splitlines()[0])
    p.add_argument(
        "-m", "--manifest", default="jobs.yaml", help="manifest path (default jobs.yaml)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("validate", help="check jobs.yaml; print every problem").set_defaults(
        func=cmd_validate
    )
    for name, func, text in (
        ("generate", cmd_generate, "write generated/ from jobs.yaml"),
        ("check", cmd_check, "exit 1 with a diff when generated/ is stale"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--out", help="output directory (default: generated/ beside the manifest)")
        sp.set_defaults(func=func)

    sp = sub.add_parser("schedule", help="each job's canonical cron, trigger and next slots")
    sp.add_argument("--next", type=int, default=3)
    sp.add_argument("--at", type=_parse_time, help="start from this time (default now)")
    sp.set_defaults(func=cmd_schedule)

    sp = sub.add_parser("cron", help="explain a Cloudflare cron expression")
    sp.add_argument("expr")
    sp.add_argument("--next", type=int, default=5)
    sp.add_argument("--at", type=_parse_time)
    sp.add_argument("--allow-both-day-fields", action="store_true")
    sp.set_defaults(func=cmd_cron)

    sp = sub.add_parser(
        "render", help="print a job's SQL and bind parameters for a slot (no database)"
    )
    sp.add_argument("type", help="message type or job name")
    sp.add_argument(
        "--at", type=_parse_time, required=True, help="the slot, e.g. 2026-10-31T10:00:00Z"
    )
    sp.set_defaults(func=cmd_render)

    sp = sub.add_parser("run", help="run one slot of a job now (DATABASE_URL); exit 1 if it failed")
    sp.add_argument("type", help="message type or job name")
    sp.add_argument(
        "--at", type=_parse_time, help="the slot (default: the latest at or before now)"
    )
    sp.add_argument("--env", help="use this environment's queue and bucket names")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("runs", help="the run ledger, newest first (DATABASE_URL)")
    sp.add_argument("--job", help="only this job (name)")
    sp.add_argument("--failed", action="store_true", help="only failed runs")
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
        "--max-batches", type=_positive, metavar="N", help="at most N pulls (empty ones count)"
    )
    sp.set_defaults(func=cmd_consume)

    sp = sub.add_parser("db", help="database commands")
    dbsub = sp.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser(
        "migrate", help="apply cronwright's and sql/migrations/ (DATABASE_URL)"
    ).set_defaults(func=cmd_migrate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
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
        print(f"error: {exc}", file=sys.stderr)
        return FAILED if getattr(exc, "transient", None) is not None else BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
