"""Benchmark of analytics.aggregate-hourly (``make bench``; a script, not a test).

Starts a throwaway PostgreSQL (devtools/pgserver.py), applies the migrations, loads one
day of contact_activity made by the server (devtools/events.py: 1,000,000 events by
default, ``--events 10000000`` for ten times that; Zipf-like org sizes, 1,000 orgs at 1M
growing with the square root of the events, 10 event types, a few contacts doing most,
uniform over the day), then runs the day's 24 hourly slots in order. For each slot it
times, on the same hour:

- floor:  a bare read-only ``SELECT ... GROUP BY`` (count, distinct contacts);
- job:    sql/aggregate_hourly.sql, rendered and run in one transaction;
- legacy: the replaced system's method: group the hour, then per group a SELECT and
          an UPDATE (count = count + n) or INSERT, one round trip each.

Floor and job run in ``--rounds`` rounds (3 by default), each the floor then the job,
every job but the last rolled back, so that all of them add the same hour; a slot's
job/floor ratio is the median of its rounds' own ratios. The legacy method runs once.
It prints the per-slot table and three ratios (growth, legacy/job, job/floor), then
where the job's time goes (EXPLAIN ANALYZE of one slot). Run from the repo root:
``.venv/bin/python bench/hourly.py [--events N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

import asyncpg  # noqa: E402

from devtools import events as generated  # noqa: E402
from devtools import pgserver  # noqa: E402
from engine import manifest  # noqa: E402
from engine.sql import sqltemplates  # noqa: E402

DAY = datetime(2026, 10, 30, tzinfo=UTC)
SETTINGS = {  # a small production-like server; checkpoints kept out of the timings
    "shared_buffers": "'256MB'",
    "work_mem": "'32MB'",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'30min'",
    "max_parallel_workers_per_gather": "0",
}
TIMEOUT = 600.0
RTT_MS = 1.0  # a network round trip to a hosted Postgres (Workers -> Neon is no faster)
_T = TypeVar("_T")

FLOOR_SQL = """
SELECT organization_id, event_type, count(*), count(DISTINCT contact_id)
FROM analytics.contact_activity
WHERE created_at >= ($1::timestamptz AT TIME ZONE 'UTC')
  AND created_at < ($2::timestamptz AT TIME ZONE 'UTC')
GROUP BY organization_id, event_type
"""
CHECK_SQL = """
SELECT count(*) = 0 FROM (
    (SELECT organization_id, event_type, count, unique_count
       FROM analytics.event_aggregates WHERE channel = 'hourly_rollup'
     EXCEPT
     SELECT organization_id, event_type, count(*), count(DISTINCT contact_id)
       FROM analytics.contact_activity GROUP BY 1, 2)
    UNION ALL
    (SELECT organization_id, event_type, count(*), count(DISTINCT contact_id)
       FROM analytics.contact_activity GROUP BY 1, 2
     EXCEPT
     SELECT organization_id, event_type, count, unique_count
       FROM analytics.event_aggregates WHERE channel = 'hourly_rollup')
) AS diff
"""
LEGACY_TABLE = """
CREATE TABLE analytics.legacy_event_aggregates (
    organization_id uuid, date date, event_type varchar(120), channel varchar(50),
    count bigint NOT NULL, unique_count bigint NOT NULL,
    PRIMARY KEY (organization_id, date, event_type, channel)
)
"""
LEGACY_SELECT = """SELECT count FROM analytics.legacy_event_aggregates
WHERE organization_id = $1 AND date = $2 AND event_type = $3 AND channel = 'hourly_rollup'"""
LEGACY_UPDATE = """UPDATE analytics.legacy_event_aggregates
SET count = count + $4, unique_count = unique_count + $5
WHERE organization_id = $1 AND date = $2 AND event_type = $3 AND channel = 'hourly_rollup'"""
LEGACY_INSERT = """INSERT INTO analytics.legacy_event_aggregates
VALUES ($1, $2, $3, 'hourly_rollup', $4, $5)"""


async def load(conn: asyncpg.Connection, events: int, orgs: int) -> float:
    """One day of generated events (devtools/events.py); returns the seconds it took,
    building the indexes and VACUUM ANALYZE included."""
    t0 = time.perf_counter()
    async with generated.bulk_load(conn):
        await generated.insert_day(conn, DAY.date(), events, orgs, seed=7)
    return time.perf_counter() - t0


async def run_job(
    conn: asyncpg.Connection, stmts: Sequence[sqltemplates.Rendered], *, commit: bool = True
) -> int:
    """The job as the executor runs it, less the ledger, committed or (to repeat a slot)
    rolled back. Returns the round trips made."""
    tr = conn.transaction()
    await tr.start()
    try:
        for st in stmts:
            await conn.execute(st.sql, *st.args, timeout=TIMEOUT)
    except BaseException:
        await tr.rollback()
        raise
    await (tr.commit() if commit else tr.rollback())
    return len(stmts) + 2  # BEGIN, the statements, COMMIT or ROLLBACK


async def run_legacy(conn: asyncpg.Connection, start: datetime, end: datetime) -> int:
    """One round trip per statement per group, each statement on its own (autocommit),
    as the replaced worker did. Returns the round trips made."""
    groups = await conn.fetch(FLOOR_SQL, start, end, timeout=TIMEOUT)
    day = start.date()
    for org, etype, n, unique in groups:
        if await conn.fetchval(LEGACY_SELECT, org, day, etype, timeout=TIMEOUT) is None:
            await conn.execute(LEGACY_INSERT, org, day, etype, n, unique, timeout=TIMEOUT)
        else:
            await conn.execute(LEGACY_UPDATE, org, day, etype, n, unique, timeout=TIMEOUT)
    return 1 + 2 * len(groups)


async def timed(coro: Awaitable[_T]) -> tuple[float, _T]:
    t0 = time.perf_counter()
    result = await coro
    return (time.perf_counter() - t0) * 1000, result


def exclusive_times(plan: dict[str, Any]) -> Iterator[tuple[dict[str, Any], float]]:
    """(node, milliseconds spent in the node itself) over an EXPLAIN ANALYZE tree."""
    total = plan.get("Actual Total Time", 0.0) * plan.get("Actual Loops", 1)
    children = plan.get("Plans", [])
    inner = sum(c.get("Actual Total Time", 0.0) * c.get("Actual Loops", 1) for c in children)
    yield plan, max(total - inner, 0.0)
    for child in children:
        yield from exclusive_times(child)


async def breakdown(
    conn: asyncpg.Connection, stmts: Sequence[sqltemplates.Rendered]
) -> dict[str, Any]:
    """Where the job's main statement spends its time, for one slot (rolled back)."""
    *setup, main = stmts
    parts = {"probes": 0.0, "scan": 0.0, "group": 0.0, "upsert": 0.0, "other": 0.0}
    probes = 0
    tr = conn.transaction()
    await tr.start()
    try:
        for st in setup:
            await conn.execute(st.sql, *st.args, timeout=TIMEOUT)
        raw = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + main.sql, *main.args, timeout=TIMEOUT
        )
    finally:
        await tr.rollback()
    doc = json.loads(raw)[0]
    for node, ms in exclusive_times(doc["Plan"]):
        kind = node["Node Type"]
        if node.get("Alias") == "p":
            parts["probes"] += ms
            probes = node.get("Actual Loops", 0)
        elif node.get("Alias") == "a":
            parts["scan"] += ms
        elif kind in ("Aggregate", "Sort", "Hash", "Group"):
            parts["group"] += ms
        elif kind == "ModifyTable":
            parts["upsert"] += ms
        else:
            parts["other"] += ms
    return {"parts": parts, "probes": probes, "total": doc["Execution Time"]}


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


async def bench(events: int, orgs: int, rounds: int) -> None:
    async with pgserver.migrated_database(settings=SETTINGS) as dsn:
        conn = await asyncpg.connect(dsn, timeout=60)
        try:
            await conn.execute(LEGACY_TABLE)
            print(f"loading {events:,} events ({orgs:,} orgs) ...", flush=True)
            loaded = await load(conn, events, orgs)
            print(f"loaded, indexed and vacuumed in {loaded:.0f} s\n", flush=True)
            summarize(await measure(conn, rounds), events, rounds)
        finally:
            await conn.close(timeout=60)


async def measure(conn: asyncpg.Connection, rounds: int) -> dict[str, Any]:
    """Per slot: floor and job on the same hour in rounds, then legacy."""
    job = manifest.load(ROOT / "jobs.yaml").job_by_name("aggregate-hourly")
    assert job is not None
    source = (ROOT / job.template).read_text()
    keys = ("floor", "job", "ratio", "legacy", "job_trips", "legacy_trips", "rounds")
    m: dict[str, Any] = {k: [] for k in keys}
    print(
        f"{'slot':>5} {'events':>7} {'floor ms':>9} {'job ms':>8} {'legacy ms':>10}"
        f" {'job/floor':>10} {'rounds':>12} {'legacy/job':>11}"
    )
    for hour in range(1, 25):
        slot = DAY + timedelta(hours=hour)
        start, end = job.window.bounds(slot)
        stmts = sqltemplates.split_statements(sqltemplates.render(job, source, slot))
        if hour == 12:
            m["explained"] = await breakdown(conn, stmts)
        floors, jobs = [], []
        for r in range(rounds):
            floor, groups = await timed(conn.fetch(FLOOR_SQL, start, end, timeout=TIMEOUT))
            ms, trips = await timed(run_job(conn, stmts, commit=r == rounds - 1))
            floors.append(floor)
            jobs.append(ms)
        legacy, legacy_trips = await timed(run_legacy(conn, start, end))
        ratios = [jb / fl for jb, fl in zip(jobs, floors, strict=True)]
        floor, ms, ratio = median(floors), median(jobs), median(ratios)
        for key, value in zip(
            keys, (floor, ms, ratio, legacy, trips, legacy_trips, ratios), strict=True
        ):
            m[key].append(value)
        events = sum(g[2] for g in groups)
        spread = f"{min(ratios):.1f}-{max(ratios):.1f}x"
        print(
            f"{hour:>3}:00 {events:>7} {floor:>9.1f} {ms:>8.1f} {legacy:>10.1f}"
            f" {ratio:>9.1f}x {spread:>12} {legacy / ms:>10.1f}x",
            flush=True,
        )
    rtts = [(await timed(conn.fetchval("SELECT 1")))[0] for _ in range(200)]
    m["rtt"] = statistics.median(rtts)
    m["correct"] = await conn.fetchval(CHECK_SQL, timeout=TIMEOUT)
    return m


def summarize(m: dict[str, Any], events: int, rounds: int) -> None:
    jobs, legacy, over_floor = m["job"], m["legacy"], m["ratio"]
    early, late = median(jobs[:4]), median(jobs[-4:])
    per_slot = [lg / jb for lg, jb in zip(legacy, jobs, strict=True)]
    every_round = [r for slot in m["rounds"] for r in slot]
    extra = RTT_MS - m["rtt"]
    remote = [
        (lg + lt * extra) / (jb + jt * extra)
        for lg, lt, jb, jt in zip(legacy, m["legacy_trips"], jobs, m["job_trips"], strict=True)
    ]
    print(
        f"\n{events:,} events; the day's rollup equals a full recompute: "
        f"{'yes' if m['correct'] else 'NO'}"
    )
    # Every hour holds as many events, so the floor's work is the same all day: the job's
    # ratio to it also cancels a machine that grows busier (or quieter) during the run.
    drift_free = median(over_floor[-4:]) / median(over_floor[:4])
    print(
        f"growth     median job ms, last 4 slots vs first 4: {late:.1f} / {early:.1f} = "
        f"{late / early:.2f}x; job/floor, last 4 vs first 4: {drift_free:.2f}x   "
        f"(goal <= 1.5x)"
    )
    print(
        f"vs legacy  legacy/job per slot: median {median(per_slot):.1f}x, worst "
        f"{min(per_slot):.1f}x   (goal >= 10x); round trips per slot: job "
        f"{median(m['job_trips']):.0f}, legacy {median(m['legacy_trips']):,.0f} "
        f"at {m['rtt']:.3f} ms each here"
    )
    print(
        f"           the same with a {RTT_MS:g} ms round trip added: median "
        f"{median(remote):.0f}x, worst {min(remote):.0f}x (modelled, not measured)"
    )
    print(
        f"vs floor   job/floor per slot (median of {rounds} rounds): median "
        f"{median(over_floor):.1f}x, worst {max(over_floor):.1f}x   (goal: median <= 4x, "
        f"worst <= 6x); single rounds ranged {min(every_round):.1f}-{max(every_round):.1f}x"
    )
    ex = m["explained"]
    parts, total = ex["parts"], ex["total"]
    print(
        f"\nwhat bounds it: the 12:00 job's main statement under EXPLAIN ANALYZE "
        f"({total:.0f} ms with instrumentation)"
    )
    for name, label in (
        ("probes", f"{ex['probes']:,} 'counted already today?' index probes"),
        ("group", "sorting, grouping per contact then org and type"),
        ("upsert", "upsert of the day's rollup rows"),
        ("scan", "index-only scan of the new hour"),
        ("other", "joins, CTEs, the rest"),
    ):
        share = parts[name] / total * 100 if total else 0.0
        print(f"  {label:<50} {parts[name]:>8.1f} ms {share:>5.1f}%")
    if ex["probes"]:
        # EXPLAIN reports each loop's time to the microsecond, so the probes' share is
        # known only to within half a microsecond a probe.
        print(
            f"  ({parts['probes'] / ex['probes'] * 1000:.1f} us per probe, +-0.5 us: EXPLAIN"
            " rounds each probe's time to 1 us)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the day")
    parser.add_argument("--orgs", type=int, help="default: 1,000 x sqrt(events / 1M)")
    parser.add_argument("--rounds", type=int, default=3, help="floor and job runs per slot")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    orgs = args.orgs or generated.default_orgs(args.events)
    asyncio.run(bench(args.events, orgs, args.rounds))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
