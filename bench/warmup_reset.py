"""Benchmark: the warmup reset of N counters, batched (LIST + DeleteObjects of 1000)
against one DeleteObject per domain, in sequence (the replaced system's method).

Runs against a real S3 protocol server it starts on 127.0.0.1 (miniflare's R2 by
default) and prints the wall time and the HTTP requests of each method.

    .venv/bin/python bench/warmup_reset.py [--counters 20000] [--server miniflare|moto]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.s3server import (
    S3Server,
    ServerUnavailable,
    list_keys,
    seed_objects,
    start_miniflare,
    start_moto,
)
from engine.adapters.s3 import R2CounterStore
from engine.core.times import utc_day_start

BODY = b'{"day": "2026-11-28", "count": 12}'


def _pairs(n: int) -> list[tuple[str, str]]:
    orgs = [str(uuid.uuid4()) for _ in range(max(1, n // 50))]
    return [(orgs[i % len(orgs)], f"d{i}.example") for i in range(n)]


def _seed(server: S3Server, pairs: list[tuple[str, str]]) -> None:
    seed_objects(server, [f"warmup/daily/{org}/{domain}" for org, domain in pairs], BODY)


def measure(server: S3Server, pairs: list[tuple[str, str]], *, batched: bool) -> tuple[float, int]:
    """Seed the counters, reset them one way, check none is left; (seconds, requests)."""
    _seed(server, pairs)
    before = utc_day_start(datetime.now(UTC)) + timedelta(days=1)

    async def reset() -> tuple[float, int]:
        async with R2CounterStore(server.settings(), clock=lambda: datetime.now(UTC)) as store:
            started = time.perf_counter()
            if batched:
                removed = await store.reset(pairs, before=before)
                assert removed == len(pairs), removed
            else:
                for org, domain in pairs:
                    await store.reset_daily_counter(org, domain)
            return time.perf_counter() - started, store.requests_sent

    seconds, requests = asyncio.run(asyncio.wait_for(reset(), 3600))
    assert list_keys(server, "warmup/daily/") == [], "counters left behind"
    return seconds, requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=20_000)
    parser.add_argument("--server", choices=["miniflare", "moto"], default="miniflare")
    args = parser.parse_args(argv)
    try:
        server = start_miniflare() if args.server == "miniflare" else start_moto()
    except ServerUnavailable as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    try:
        pairs = _pairs(args.counters)
        batched = measure(server, pairs, batched=True)
        single = measure(server, pairs, batched=False)
    finally:
        server.stop()
    print(f"warmup reset of {args.counters} counters on {args.server} (127.0.0.1)")
    print(f"{'method':<34}{'wall s':>10}{'requests':>10}")
    print(f"{'batched (LIST + DeleteObjects)':<34}{batched[0]:>10.2f}{batched[1]:>10}")
    print(f"{'one DeleteObject per domain':<34}{single[0]:>10.2f}{single[1]:>10}")
    print(
        f"batched is {single[0] / batched[0]:.1f}x faster"
        f" with {single[1] / batched[1]:.0f}x fewer requests"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
