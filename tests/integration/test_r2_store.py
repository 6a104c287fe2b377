"""The R2 counter store against real S3 protocol servers (miniflare's R2, moto)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from engine.adapters.s3 import R2CounterStore
from engine.core.errors import StorageError
from engine.runtime.warmup import WarmupReset, utc_day_start
from tests.fixtures.aio import run
from tests.fixtures.s3 import MutableClock, S3Server, list_keys, put_objects

pytestmark = pytest.mark.s3


def _store(server: S3Server, clock: MutableClock) -> R2CounterStore:
    return R2CounterStore(server.settings(), clock=clock)


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(datetime.now(UTC))


@pytest.fixture
def org() -> str:
    return str(uuid.uuid4())


def test_increments_add_up_and_the_body_records_the_day(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with _store(s3_server, clock) as store:
            return (
                await store.increment(org, "a.example", 2),
                await store.increment(org, "a.example", 3),
                await store.get(org, "a.example"),
            )

    assert run(scenario()) == (2, 5, 5)
    assert list_keys(s3_server) == [f"warmup/daily/{org}/a.example"]


def test_yesterdays_counter_reads_as_zero_and_the_next_increment_starts_at_n(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    today = clock.now

    async def scenario() -> tuple[int, int, int]:
        async with _store(s3_server, clock) as store:
            clock.now = today - timedelta(days=1)
            await store.increment(org, "a.example", 50)
            clock.now = today
            before = await store.get(org, "a.example")
            after = await store.increment(org, "a.example", 4)
            return before, after, await store.get(org, "a.example")

    assert run(scenario()) == (0, 4, 4)


def test_late_replay_of_the_reset_keeps_a_counter_written_after_the_slot(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    slot = utc_day_start(clock.now)  # today's midnight run, replayed late

    async def scenario() -> tuple[int, int, int, int]:
        async with _store(s3_server, clock) as store:
            await store.increment(org, "a.example", 6)
            replayed = await store.reset([(org, "a.example")], before=slot)
            kept = await store.get(org, "a.example")
            next_day = await store.reset([(org, "a.example")], before=slot + timedelta(days=1))
            return replayed, kept, next_day, await store.get(org, "a.example")

    assert run(scenario()) == (0, 6, 1, 0)
    assert list_keys(s3_server) == []


def test_reset_action_twice_is_harmless_and_touches_only_the_rows_domains(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    rows = [
        {"organization_id": uuid.UUID(org), "domain": "a.example"},
        {"organization_id": org, "domain": "b.example"},
        {"organization_id": org, "domain": "never-written.example"},
    ]
    tomorrow = utc_day_start(clock.now) + timedelta(days=1)

    async def scenario() -> tuple[int, int]:
        async with _store(s3_server, clock) as store:
            for domain in ("a.example", "b.example", "kept.example"):
                await store.increment(org, domain, 1)
            reset = WarmupReset(store)
            return await reset(rows, tomorrow), await reset(rows, tomorrow)

    assert run(scenario()) == (2, 0)
    assert list_keys(s3_server) == [f"warmup/daily/{org}/kept.example"]


def test_reset_daily_counter_removes_unconditionally(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    async def scenario() -> int:
        async with _store(s3_server, clock) as store:
            await store.increment(org, "a.example", 3)
            await store.reset_daily_counter(org, "a.example")
            await store.reset_daily_counter(org, "a.example")
            return await store.get(org, "a.example")

    assert run(scenario()) == 0
    assert list_keys(s3_server) == []


def test_a_body_the_replaced_system_wrote_reads_as_zero_and_is_overwritten(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    put_objects(s3_server, [(f"warmup/daily/{org}/legacy.example", b"17")])

    async def scenario() -> tuple[int, int]:
        async with _store(s3_server, clock) as store:
            return await store.get(org, "legacy.example"), await store.increment(
                org, "legacy.example", 2
            )

    assert run(scenario()) == (0, 2)


def test_increment_after_another_store_reset_the_counter_starts_afresh(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    async def scenario() -> int:
        async with _store(s3_server, clock) as writer, _store(s3_server, clock) as resetter:
            await writer.increment(org, "a.example", 5)  # writer now remembers the ETag
            await resetter.reset_daily_counter(org, "a.example")
            return await writer.increment(org, "a.example", 2)

    assert run(scenario()) == 2


def test_a_bucket_that_does_not_exist_fails_at_once_instead_of_retrying(
    s3_server: S3Server, clock: MutableClock, org: str
) -> None:
    async def main() -> None:
        store = R2CounterStore(s3_server.settings(bucket="no-such-bucket"), clock=clock)
        async with store:
            await store.increment(org, "a.example", 1)

    with pytest.raises(StorageError) as caught:
        run(main())
    assert (caught.value.error_class, caught.value.transient) == ("no_bucket", False)
