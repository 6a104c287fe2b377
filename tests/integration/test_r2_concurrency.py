"""Concurrent increments on one key, arbitrated by R2's conditional writes.

Only on miniflare: moto 5.2.5 checks If-Match/If-None-Match and then writes without a
lock, so under concurrent writers it can accept two writes from the same ETag."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from engine.adapters.s3 import R2CounterStore, StoreRetry
from tests.fixtures.aio import run
from tests.fixtures.s3 import S3Server, empty_bucket

pytestmark = pytest.mark.s3

WRITERS, INCREMENTS = 8, 200


def test_eight_concurrent_writers_lose_no_increment(miniflare_r2: S3Server) -> None:
    org = str(uuid.uuid4())
    # Generous attempts: a writer may lose many races in a row while another one leads.
    policy = StoreRetry(attempts=200, base_seconds=0.01, cap_seconds=1.0)

    async def scenario() -> tuple[int, int]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2 * WRITERS))
        # One store (one client, one connection pool) per writer, as separate processes.
        stores = [
            R2CounterStore(
                miniflare_r2.settings(), clock=lambda: datetime.now(UTC), conflict_retry=policy
            )
            for _ in range(WRITERS)
        ]

        async def write(store: R2CounterStore) -> list[int]:
            return [await store.increment(org, "hot.example", 1) for _ in range(INCREMENTS)]

        try:
            seen = await asyncio.gather(*(write(s) for s in stores))
            final = await stores[0].get(org, "hot.example")
        finally:
            for store in stores:
                await store.aclose()
        # Every increment returned a distinct count: no two writes built on one read.
        assert sorted(c for counts in seen for c in counts) == list(range(1, 1601))
        return final, sum(s.requests_sent for s in stores)

    try:
        final, requests = run(scenario(), timeout=240)
    finally:
        empty_bucket(miniflare_r2)
    assert final == WRITERS * INCREMENTS
    # Each write is a PUT; anything beyond one request per increment was a lost race
    # being re-read, so the conditional-write path was exercised.
    assert requests > WRITERS * INCREMENTS
