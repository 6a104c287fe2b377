"""Slot start latency of ``cronwright serve``: from the minute a slot is due to the moment
its job's statement starts, on the real clock (``make bench``; about 5 minutes).

For 1,000 and for 6 every-minute no-op jobs it writes a project, migrates a throwaway
Postgres, and runs a real ``cronwright serve --consumers 4 --metrics-port P`` (a
subprocess) for a few minutes. Each job's statement records ``clock_timestamp()`` as its
first act, beside its slot; the delay is that time minus the slot. The first tick counted
is the first one at least ``WARMUP`` seconds after ``serve`` printed that it started.
It prints the distribution (p50, p90, p99, max) over every counted slot, each tick's own
p50 and p99 (the spread), which path sent the slots (the scheduler or the reconciler),
and the goals beside them.

Then what one tick costs, in-process on the same server: the scheduler's tick of 1,000
and of 6 slots, round trips counted at the connection (devtools/roundtrips.py) and the
median time of several ticks, against a baseline in turn with it: the same tick sent the
way the Cloudflare sender sends (claim in a transaction, then the queue rows, then
commit), as every tick was sent before the Postgres sender's one statement.

Goals: 1,000 jobs p50 <= 1 s and p99 <= 3 s; 6 jobs p99 <= 0.5 s; a tick of 1,000
slots one round trip (per batch of 1,000). Run from the repo root:

    .venv/bin/python -m bench.latency [--ticks 3] [--small-ticks 2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import asyncpg

from devtools import pgserver
from devtools.ports import free_port
from devtools.roundtrips import counted
from engine.adapters.migrate import migrate_url
from engine.adapters.pgqueue import PgSender, body_json
from engine.app.scheduler import Scheduler
from engine.core.queries import query
from engine.manifest import load
from engine.runtime.dispatch import Sender, Slot, claim_args, claimed
from engine.runtime.ports import Db
from engine.runtime.slotstore import PgSlotStore

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 10.0  # seconds after serve started before a tick counts
DRAIN = 60.0  # seconds a tick's slots get to start before the run is called short
MINUTE = timedelta(minutes=1)
GOALS = {1000: {"p50": 1.0, "p99": 3.0}, 6: {"p99": 0.5}}

TEMPLATE = (
    "INSERT INTO latency.starts (job, slot, started_at)\n"
    "VALUES ({{ job.name }}, {{ slot }}, clock_timestamp())\n"
)
MIGRATION = (
    "CREATE SCHEMA latency;\n"
    "CREATE TABLE latency.starts (\n"
    "    job text NOT NULL, slot timestamptz NOT NULL, started_at timestamptz NOT NULL,\n"
    "    PRIMARY KEY (job, slot)\n"
    ");\n"
)


def write_project(root: Path, jobs: int) -> Path:
    """``jobs`` every-minute no-op jobs on the Postgres transport; the manifest's path."""
    (root / "sql" / "migrations").mkdir(parents=True)
    (root / "sql" / "start.sql").write_text(TEMPLATE, encoding="utf-8")
    (root / "sql" / "migrations" / "0001_starts.sql").write_text(MIGRATION, encoding="utf-8")
    lines = ["version: 1", "name: latency", "jobs:"]
    for i in range(jobs):
        lines += [f"  noop-{i:04d}:", '    cron: "* * * * *"', "    sql: sql/start.sql"]
    path = root / "jobs.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0-100) of a non-empty list."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(p / 100 * len(ranked)) - 1)]


async def fresh_database(server: pgserver.PgServer, manifest: Path) -> str:
    name = f"latency_{uuid.uuid4().hex[:12]}"
    await pgserver.admin(server, f'CREATE DATABASE "{name}"')
    dsn = server.dsn(name)
    await migrate_url(dsn, manifest.parent / "sql" / "migrations")
    return dsn


async def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=60)
    try:
        return list(await conn.fetch(sql, *args, timeout=60))
    finally:
        await conn.close(timeout=60)


def serve(dsn: str, manifest: Path, jobs: int, ticks: int) -> tuple[datetime, datetime]:
    """Run ``serve`` until ``ticks`` counted ticks have started every job (or
    :data:`DRAIN` after the last one); returns the first and the last counted slot."""
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable, "-m", "engine", "-m", str(manifest), "serve", "--consumers", "4",
        "--metrics-port", str(free_port()), "--log-level", "warning",
    ]  # fmt: skip
    err = open(manifest.parent / "serve.log", "w+b")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=env, stderr=err, stdout=subprocess.DEVNULL)
    try:
        started = _wait_started(proc, err)
        first = (started + timedelta(seconds=WARMUP) + MINUTE).replace(second=0, microsecond=0)
        last = first + (ticks - 1) * MINUTE
        deadline = last + timedelta(seconds=DRAIN)
        want = jobs * ticks
        while datetime.now(UTC) < deadline:
            time.sleep(1.0)
            if proc.poll() is not None:
                raise SystemExit(f"serve stopped ({proc.returncode}): {_tail(err)}")
            if datetime.now(UTC) > last:
                rows = asyncio.run(
                    fetch(
                        dsn,
                        "SELECT count(*) AS n FROM latency.starts WHERE slot BETWEEN $1 AND $2",
                        first,
                        last,
                    )
                )
                if rows[0]["n"] >= want:
                    break
        return first, last
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()


def _wait_started(proc: subprocess.Popen[bytes], err: IO[bytes]) -> datetime:
    """The time ``serve`` said it started (its line on stderr)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve stopped ({proc.returncode}): {_tail(err)}")
        if b"scheduler and consumers on" in _read(err):
            return datetime.now(UTC)
        time.sleep(0.1)
    raise SystemExit(f"serve did not start within 120 s: {_tail(err)}")


def _read(err: IO[bytes]) -> bytes:
    err.seek(0)
    return err.read()


def _tail(err: IO[bytes]) -> str:
    return _read(err).decode(errors="replace")[-2000:]


async def delays(dsn: str, first: datetime, last: datetime) -> dict[datetime, list[float]]:
    """Each counted tick's start delays, in seconds."""
    rows = await fetch(
        dsn,
        "SELECT slot, extract(epoch FROM started_at - slot)::float8 AS delay"
        " FROM latency.starts WHERE slot BETWEEN $1 AND $2",
        first,
        last,
    )
    ticks: dict[datetime, list[float]] = {}
    for r in rows:
        ticks.setdefault(r["slot"], []).append(r["delay"])
    return ticks


async def senders(dsn: str, first: datetime, last: datetime) -> dict[str, int]:
    rows = await fetch(
        dsn,
        "SELECT source, count(*) AS n FROM cronwright.dispatched WHERE slot BETWEEN $1 AND $2"
        " GROUP BY source ORDER BY source",
        first,
        last,
    )
    return {r["source"]: r["n"] for r in rows}


def run_serve(server: pgserver.PgServer, jobs: int, ticks: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cronwright-latency-") as tmp:
        manifest = write_project(Path(tmp), jobs)
        dsn = asyncio.run(fresh_database(server, manifest))
        first, last = serve(dsn, manifest, jobs, ticks)
        per_tick = asyncio.run(delays(dsn, first, last))
        sent = asyncio.run(senders(dsn, first, last))
    return {"ticks": per_tick, "expected": jobs * ticks, "senders": sent}


class ClaimThenSend:
    """The baseline: the Postgres queue sent to as the Cloudflare sender sends (claim in
    a transaction, then the queue rows, then commit: four round trips a batch)."""

    transport = "postgres"
    batch = PgSender.batch

    def __init__(self, queue: str) -> None:
        self._queue = queue

    async def send_batch(
        self, db: Db, slots: Sequence[Slot], *, source: str, force: bool, by: str | None
    ) -> list[Slot]:
        async with db.transaction() as tx:
            rows = await tx.fetch(
                query("dispatch.claim"),
                *claim_args(slots, source=source, transport=self.transport, force=force, by=by),
                None,
                None,
                None,
            )
            sent = claimed(slots, rows)
            await tx.execute(
                query("queue.put"),
                self._queue,
                [body_json(s) for s in sent],
                [s.job.name for s in sent],
                [s.slot for s in sent],
                None,
                0.0,
            )
        return sent


async def tick_cost(server: pgserver.PgServer, jobs: int, rounds: int) -> dict[str, list[float]]:
    """The scheduler's tick of ``jobs`` slots, in-process, through the Postgres sender and
    through the baseline, in turn: each one's round trips and times."""
    with tempfile.TemporaryDirectory(prefix="cronwright-tick-") as tmp:
        manifest = load(write_project(Path(tmp), jobs))
        dsn = await fresh_database(server, Path(manifest.path))
        found: dict[str, list[float]] = {}
        async with counted(dsn) as (db, trips):
            senders: dict[str, Sender] = {
                "ours": PgSender(manifest.queue.name),
                "baseline": ClaimThenSend(manifest.queue.name),
            }
            start = datetime(2026, 1, 1, tzinfo=UTC)
            for i in range(rounds + 1):  # the first warms the statement cache
                for name, sender in senders.items():
                    scheduler = Scheduler(
                        db=db,
                        store=PgSlotStore(db),
                        manifest=manifest,
                        sender=sender,
                        clock=lambda: datetime.now(UTC),
                        sleep=asyncio.sleep,
                        environ={},
                    )
                    t = start + (2 * i + (name == "baseline")) * MINUTE
                    trips.clear()
                    t0 = time.perf_counter()
                    sent = await scheduler.tick(t - MINUTE, t)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert len(sent) == jobs, (name, len(sent), jobs)
                    if i:
                        found.setdefault(f"{name} ms", []).append(elapsed)
                        found.setdefault(f"{name} trips", []).append(trips.trips)
    return found


def report(jobs: int, r: dict[str, object]) -> None:
    ticks: dict[datetime, list[float]] = r["ticks"]  # type: ignore[assignment]
    every = [d for ds in ticks.values() for d in ds]
    goals = GOALS.get(jobs, {})
    print(
        f"\n{jobs:,} every-minute no-op jobs, serve --consumers 4: {len(ticks)} ticks,"
        f" {len(every):,} of {r['expected']:,} slots started; sent by {r['senders']}"
    )
    if not every:
        print("  no slot started")
        return
    for name, p in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)):
        value = percentile(every, p)
        goal = goals.get(name)
        verdict = ""
        if goal is not None:
            verdict = f"  (goal <= {goal:g} s: {'met' if value <= goal else 'MISSED'})"
        print(f"  {name}  {value:7.3f} s{verdict}")
    spread = ", ".join(
        f"{slot:%H:%M} {percentile(ds, 50):.2f}/{percentile(ds, 99):.2f}"
        for slot, ds in sorted(ticks.items())
    )
    print(f"  each tick's p50/p99 (s): {spread}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3, help="counted ticks at 1,000 jobs")
    parser.add_argument("--small-ticks", type=int, default=2, help="counted ticks at 6 jobs")
    parser.add_argument("--rounds", type=int, default=7, help="ticks timed in-process")
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args(argv)
    server = pgserver.start(settings={"max_connections": "100"})
    try:
        big = run_serve(server, args.jobs, args.ticks)
        small = run_serve(server, 6, args.small_ticks)
        costs = {n: asyncio.run(tick_cost(server, n, args.rounds)) for n in (args.jobs, 6)}
    finally:
        pgserver.stop(server)
    print("slot start latency: the job's statement's clock_timestamp() minus its slot")
    report(args.jobs, big)
    report(6, small)
    print(
        f"\na scheduler tick, in-process (median of {args.rounds}); the baseline claims, then"
        " inserts the queue rows, then commits (the Cloudflare sender's shape)"
    )
    for n, c in costs.items():
        ours, base = statistics.median(c["ours ms"]), statistics.median(c["baseline ms"])
        trips = statistics.median(c["ours trips"])
        print(
            f"  {n:5,} slots: {trips:.0f} round trip{'s' * (trips != 1)} (goal: 1 per batch"
            f" of {PgSender.batch:,}: {'met' if trips <= -(-n // PgSender.batch) else 'MISSED'}),"
            f" {ours:.1f} ms ({min(c['ours ms']):.1f}-{max(c['ours ms']):.1f});"
            f" baseline {statistics.median(c['baseline trips']):.0f} round trips, {base:.1f} ms:"
            f" {ours / base:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
