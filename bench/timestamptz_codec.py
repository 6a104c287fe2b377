"""The cost of the adapter's timestamptz codec (engine/adapters/pgtimes.py) against
asyncpg's own C codec, measured in the same run on one connection each:

- reading 10,000 timestamptz values (the gauges' heaviest read: 7 days of an
  every-minute job's succeeded slots), goal: under 5 ms more per 10,000 values;
- the executor's one-round-trip run (``cronwright.run_slot``) of a probe job, which
  binds four timestamptz values and reads none, goal: under 2% slower.

Each figure is the median of the rounds' own ratios. Starts its own throwaway Postgres.
Run from the repo root:

    .venv/bin/python -m bench.timestamptz_codec [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from devtools import pgserver
from engine.adapters import pgtimes

READ = (
    "SELECT array_agg(t) FROM generate_series('2026-10-24 00:00+00'::timestamptz,"
    " '2026-10-24 00:00+00'::timestamptz + interval '9999 minutes', interval '1 minute') AS t"
)
# Four timestamptz binds and an integer back, as the executor's run of a SQL job sends.
WRITE = (
    "SELECT extract(epoch FROM $1::timestamptz + ($2::timestamptz - $3::timestamptz)"
    " + ($4::timestamptz - $4::timestamptz))::int"
)
SLOT = datetime(2026, 10, 31, 10, tzinfo=UTC)
ARGS = (SLOT, SLOT + timedelta(minutes=1), SLOT, SLOT)


async def interleaved(
    plain: Callable[[], Awaitable[object]], ours: Callable[[], Awaitable[object]], n: int
) -> tuple[float, float]:
    """Seconds for ``n`` calls of each, run in alternating slices of ``n // 10`` so that a
    neighbour's load falls on both alike."""
    totals = [0.0, 0.0]
    for _ in range(10):
        for k, work in enumerate((plain, ours)):
            started = time.perf_counter()
            for _ in range(n // 10):
                await work()
            totals[k] += time.perf_counter() - started
    return totals[0], totals[1]


async def measure(dsn: str, rounds: int) -> tuple[list[float], list[float], list[float]]:
    plain = await asyncpg.connect(dsn)
    ours = await asyncpg.connect(dsn)
    await pgtimes.install(ours)
    extra_ms, read_ratio, write_ratio = [], [], []
    try:
        for _ in range(rounds):
            p, o = await interleaved(lambda: plain.fetchval(READ), lambda: ours.fetchval(READ), 20)
            extra_ms.append((o - p) / 20 * 1000)
            read_ratio.append(o / p)
            p, o = await interleaved(
                lambda: plain.fetchval(WRITE, *ARGS), lambda: ours.fetchval(WRITE, *ARGS), 2000
            )
            write_ratio.append(o / p)
    finally:
        await plain.close()
        await ours.close()
    return extra_ms, read_ratio, write_ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    server = pgserver.start()
    try:
        extra, read_ratio, write_ratio = asyncio.run(measure(server.dsn("postgres"), args.rounds))
    finally:
        pgserver.stop(server)
    extra_ms, read_x, write_x = (statistics.median(v) for v in (extra, read_ratio, write_ratio))
    print(f"timestamptz codec against asyncpg's own (median of {args.rounds} rounds)")
    verdict = "met" if extra_ms < 5 else "MISSED"
    print(f"  reading 10,000 values   {read_x:.2f}x, +{extra_ms:.2f} ms  (goal < +5 ms: {verdict})")
    verdict = "met" if write_x < 1.02 else "MISSED"
    print(f"  binding 4 values a call {write_x:.3f}x  (goal < 1.02x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
