"""Benchmark of settling a day in analytics.aggregate-hourly (``make bench``; a script).

Starts a throwaway PostgreSQL, loads one day of contact_activity (1,000,000 events by
default, ``--events 10000000`` for ten times that; the same generator and orgs as
bench/hourly.py), rolls the day up with its 24 hourly slots, inserts late events (0.2% of
the day, created inside hours already rolled up), then times, interleaved on the same
data:

- floor:  a bare read-only ``SELECT ... GROUP BY`` (count, distinct contacts) over the
          whole day;
- settle: the settling run (the next day's 01:00 slot), rendered and run in one
          transaction, then rolled back so that every repetition settles the same day.

It prints the median settle/floor ratio (goal <= 3x) and checks that the settled day
equals a full recompute, late events included. The settling run reads the day from
contact_activity_day_idx (sql/migrations/0003) in group order; the floor, on a table that
holds just this day, reads contact_activity_org_type_contact_idx in group order. Neither
sorts. Run from the repo root:
``.venv/bin/python -m bench.settle [--events N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import asyncpg

from bench.hourly import CHECK_SQL, DAY, FLOOR_SQL, SETTINGS, TIMEOUT, load, run_job, timed
from devtools import events as generated
from devtools import pgserver as pgfixture
from devtools.events import EVENT_COLUMNS
from engine import manifest
from engine.sql import sqltemplates

ROOT = Path(__file__).resolve().parents[1]
LATE_SHARE = 0.002  # of the day's events, committed after the run that covered their hour


async def late_events(conn: asyncpg.Connection, late: int) -> None:
    """Copies of existing events of the day at random earlier times: new rows, same orgs,
    contacts and types, so they change both counts and (sometimes) distinct contacts."""
    await conn.execute(
        f"""
        INSERT INTO analytics.contact_activity ({", ".join(EVENT_COLUMNS)})
        SELECT gen_random_uuid(), organization_id, contact_id, event_type, event_source,
               event_data, created_at - interval '7 hours'
        FROM analytics.contact_activity
        WHERE created_at >= $1::timestamptz AT TIME ZONE 'UTC' + interval '7 hours'
        ORDER BY id
        LIMIT $2
        """,
        DAY,
        late,
        timeout=TIMEOUT,
    )
    # A new contact in every org, late: a distinct count that only a recompute sees.
    await conn.execute(
        """
        INSERT INTO analytics.contact_activity (organization_id, contact_id, event_type,
                                                created_at)
        SELECT DISTINCT organization_id, $2::uuid, 'page_view',
               $1::timestamptz AT TIME ZONE 'UTC' + interval '3 hours'
        FROM analytics.contact_activity
        """,
        DAY,
        uuid.uuid4(),
        timeout=TIMEOUT,
    )
    await conn.execute("ANALYZE analytics.contact_activity", timeout=TIMEOUT)


async def measure(conn: asyncpg.Connection, repeat: int, late: int) -> None:
    job = manifest.load(ROOT / "jobs.yaml").job_by_name("aggregate-hourly")
    assert job is not None
    source = (ROOT / job.template).read_text()
    for hour in range(1, 25):
        slot = DAY + timedelta(hours=hour)
        await run_job(conn, sqltemplates.split_statements(sqltemplates.render(job, source, slot)))
    await late_events(conn, late)
    settling = DAY + timedelta(hours=25)
    stmts = sqltemplates.split_statements(sqltemplates.render(job, source, settling))
    day_end = DAY + timedelta(days=1)
    floors, settles = [], []
    print(f"{'round':>5} {'floor ms':>9} {'settle ms':>10} {'settle/floor':>13}")
    for i in range(repeat):
        floor, _ = await timed(conn.fetch(FLOOR_SQL, DAY, day_end, timeout=TIMEOUT))
        ms, _ = await timed(run_job(conn, stmts, commit=False))  # every round settles D
        floors.append(floor)
        settles.append(ms)
        print(f"{i + 1:>5} {floor:>9.1f} {ms:>10.1f} {ms / floor:>12.2f}x", flush=True)
    stale = await conn.fetchval(CHECK_SQL, timeout=TIMEOUT)
    await run_job(conn, stmts)
    correct = await conn.fetchval(CHECK_SQL, timeout=TIMEOUT)
    ratio = statistics.median(settles) / statistics.median(floors)
    print(
        f"\nbefore settling the day misses the late events: {'yes' if not stale else 'NO'}; "
        f"after it equals a full recompute: {'yes' if correct else 'NO'}"
    )
    print(
        f"settle     median settling run / median whole-day floor: "
        f"{statistics.median(settles):.0f} / {statistics.median(floors):.0f} ms = "
        f"{ratio:.2f}x   (goal <= 3x)"
    )


async def bench(events: int, orgs: int, repeat: int) -> None:
    async with pgfixture.migrated_database(settings=SETTINGS) as dsn:
        conn = await asyncpg.connect(dsn, timeout=60)
        try:
            print(f"loading {events:,} events ({orgs:,} orgs) ...", flush=True)
            loaded = await load(conn, events, orgs)
            print(f"loaded, indexed and vacuumed in {loaded:.0f} s\n", flush=True)
            await measure(conn, repeat, round(events * LATE_SHARE))
        finally:
            await conn.close(timeout=60)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the day")
    parser.add_argument("--orgs", type=int, help="default: 1,000 x sqrt(events / 1M)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    orgs = args.orgs or generated.default_orgs(args.events)
    asyncio.run(bench(args.events, orgs, args.repeat))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
