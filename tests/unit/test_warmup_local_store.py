"""The local directory store: the same counter semantics as R2, on files."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.adapters.localstore import LocalDirectoryStore
from engine.core.errors import StorageError
from engine.runtime.warmup import WarmupReset
from tests.fixtures.aio import run
from tests.fixtures.s3 import MutableClock

ORG = "7d7f6a2c-1111-4c1e-9a51-0b9d6a1f0c11"
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(NOON)


@pytest.fixture
def store(tmp_path: Path, clock: MutableClock) -> LocalDirectoryStore:
    return LocalDirectoryStore(tmp_path, clock=clock)


def test_increments_add_up_and_are_stored_under_the_counter_key(
    store: LocalDirectoryStore, tmp_path: Path
) -> None:
    assert run(store.increment(ORG, "a.example", 2)) == 2
    assert run(store.increment(ORG, "a.example", 3)) == 5
    assert run(store.get(ORG, "a.example")) == 5
    body = (tmp_path / "warmup" / "daily" / ORG / "a.example").read_bytes()
    assert body == b'{"day": "2026-11-28", "count": 5}'


def test_missing_counter_reads_as_zero(store: LocalDirectoryStore) -> None:
    assert run(store.get(ORG, "never.example")) == 0


def test_yesterdays_counter_reads_as_zero_without_a_reset(
    store: LocalDirectoryStore, clock: MutableClock
) -> None:
    clock.now = NOON - timedelta(days=1)
    run(store.increment(ORG, "a.example", 40))
    clock.now = NOON
    assert run(store.get(ORG, "a.example")) == 0
    assert run(store.increment(ORG, "a.example", 3)) == 3
    assert run(store.get(ORG, "a.example")) == 3


def test_counter_written_before_midnight_counts_for_its_own_day(
    store: LocalDirectoryStore, clock: MutableClock
) -> None:
    clock.now = MIDNIGHT - timedelta(microseconds=1)
    run(store.increment(ORG, "a.example", 5))
    clock.now = MIDNIGHT
    assert run(store.get(ORG, "a.example")) == 0


def test_reset_removes_only_counters_of_days_before_the_slot(
    store: LocalDirectoryStore, clock: MutableClock
) -> None:
    clock.now = NOON - timedelta(days=1)
    run(store.increment(ORG, "old.example", 4))
    run(store.increment(ORG, "unselected.example", 4))
    clock.now = NOON
    run(store.increment(ORG, "today.example", 2))
    pairs = [(ORG, "old.example"), (ORG, "today.example"), (ORG, "missing.example")]
    assert run(store.reset(pairs, before=MIDNIGHT)) == 1
    assert not (store.root / "warmup/daily" / ORG / "old.example").exists()
    assert run(store.get(ORG, "today.example")) == 2
    clock.now = NOON - timedelta(days=1)
    assert run(store.get(ORG, "unselected.example")) == 4


def test_late_replay_of_the_reset_keeps_counts_made_after_the_slot(
    store: LocalDirectoryStore, clock: MutableClock
) -> None:
    clock.now = NOON - timedelta(days=1)
    run(store.increment(ORG, "a.example", 9))
    assert run(store.reset([(ORG, "a.example")], before=MIDNIGHT)) == 1
    run(store.increment(ORG, "a.example", 2))  # still yesterday by the clock: a new counter
    clock.now = MIDNIGHT + timedelta(hours=3)
    run(store.increment(ORG, "a.example", 5))
    assert run(store.reset([(ORG, "a.example")], before=MIDNIGHT)) == 0
    assert run(store.get(ORG, "a.example")) == 5


def test_reset_action_floors_the_slot_to_its_day_and_is_harmless_twice(
    store: LocalDirectoryStore, clock: MutableClock
) -> None:
    clock.now = NOON - timedelta(days=1)
    run(store.increment(ORG, "a.example", 7))
    run(store.increment(ORG, "b.example", 7))
    clock.now = NOON
    run(store.increment(ORG, "b.example", 1))
    rows = [
        {"organization_id": ORG, "domain": "a.example"},
        {"organization_id": ORG, "domain": "b.example"},
    ]
    reset = WarmupReset(store)
    assert run(reset(rows, MIDNIGHT + timedelta(minutes=5))) == 1
    assert run(reset(rows, MIDNIGHT)) == 0
    assert run(store.get(ORG, "b.example")) == 1


def test_reset_of_a_body_we_did_not_write_falls_back_to_its_mtime(
    store: LocalDirectoryStore, tmp_path: Path
) -> None:
    legacy = tmp_path / "warmup" / "daily" / ORG / "legacy.example"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"17")
    os.utime(legacy, (MIDNIGHT.timestamp() - 60, MIDNIGHT.timestamp() - 60))
    fresh = legacy.with_name("fresh.example")
    fresh.write_bytes(b"17")
    os.utime(fresh, (MIDNIGHT.timestamp() + 60, MIDNIGHT.timestamp() + 60))
    pairs = [(ORG, "legacy.example"), (ORG, "fresh.example")]
    assert run(store.reset(pairs, before=MIDNIGHT)) == 1
    assert not legacy.exists() and fresh.exists()


def test_body_we_did_not_write_reads_as_zero_and_is_overwritten(
    store: LocalDirectoryStore, tmp_path: Path
) -> None:
    legacy = tmp_path / "warmup" / "daily" / ORG / "legacy.example"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"17")
    assert run(store.get(ORG, "legacy.example")) == 0
    assert run(store.increment(ORG, "legacy.example", 2)) == 2


def test_reset_daily_counter_removes_a_counter_of_today(store: LocalDirectoryStore) -> None:
    run(store.increment(ORG, "a.example", 3))
    run(store.reset_daily_counter(ORG, "a.example"))
    run(store.reset_daily_counter(ORG, "a.example"))  # already gone: no error
    assert run(store.get(ORG, "a.example")) == 0


def test_concurrent_writers_lose_no_increment(
    store: LocalDirectoryStore, tmp_path: Path, clock: MutableClock
) -> None:
    other = LocalDirectoryStore(tmp_path, clock=clock)  # a second "process"

    async def writers() -> None:
        async def write(s: LocalDirectoryStore) -> None:
            for _ in range(100):
                await s.increment(ORG, "hot.example", 1)

        await asyncio.gather(*(write(s) for s in [store, other] * 4))

    threads = [threading.Thread(target=run, args=(writers(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert run(store.get(ORG, "hot.example")) == 1600
    leftovers = [p.name for p in (tmp_path / "warmup" / "daily" / ORG).iterdir()]
    assert leftovers == ["hot.example"]  # no temp file left behind


@pytest.mark.parametrize(
    ("org", "domain", "message"),
    [
        (ORG, "../../etc", "invalid warmup counter domain '../../etc'"),
        (ORG, "a/b", "invalid warmup counter domain 'a/b'"),
        (ORG, "", "invalid warmup counter domain ''"),
        ("..", "a.example", "invalid warmup counter organization_id '..'"),
    ],
)
def test_keys_that_could_escape_the_prefix_are_refused(
    store: LocalDirectoryStore, org: str, domain: str, message: str
) -> None:
    with pytest.raises(StorageError) as info:
        run(store.increment(org, domain, 1))
    assert str(info.value) == message
    assert (info.value.transient, info.value.error_class) == (False, "invalid_key")


def test_negative_increment_is_refused(store: LocalDirectoryStore) -> None:
    with pytest.raises(StorageError) as info:
        run(store.increment(ORG, "a.example", -1))
    assert str(info.value) == "increment must be a non-negative int, got -1"
