"""Bulk reset at scale: 20,000 counters on miniflare's R2 (which caps list and delete at
1000 keys), 2,500 on moto (seeding moto is client-bound at ~300 PUTs/s here)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from engine.adapters.s3 import R2CounterStore
from engine.runtime.warmup import utc_day_start
from tests.fixtures.aio import run
from tests.fixtures.s3 import S3Server, list_keys, seed_objects

pytestmark = pytest.mark.s3

COUNT = {"miniflare": 20_000, "moto": 2_500}


def test_bulk_reset_removes_every_selected_counter_and_keeps_the_rest(s3_server: S3Server) -> None:
    count = COUNT[s3_server.kind]
    orgs = [str(uuid.uuid4()) for _ in range(count // 50)]
    selected = [(org, f"d{i}.example") for org in orgs for i in range(50)]
    others = [(org, "not-warming.example") for org in orgs[:150]] + [
        (str(uuid.uuid4()), f"d{i}.example") for i in range(100)
    ]
    key = lambda pair: f"warmup/daily/{pair[0]}/{pair[1]}"  # noqa: E731
    body = b'{"day": "2026-11-28", "count": 3}'
    seed_objects(s3_server, [key(p) for p in selected + others], body)
    before = utc_day_start(datetime.now(UTC)) + timedelta(days=1)

    async def reset() -> tuple[int, int]:
        async with R2CounterStore(s3_server.settings(), clock=lambda: datetime.now(UTC)) as store:
            removed = await store.reset(selected, before=before)
            return removed, store.requests_sent

    removed, requests = run(reset(), timeout=300)
    assert removed == count
    assert sorted(list_keys(s3_server)) == sorted(key(p) for p in others)
    # One list page and (at most) one DeleteObjects per 1000 keys: no request per key.
    pages = math.ceil((count + len(others)) / 1000)
    assert requests == pages + math.ceil(count / 1000)
