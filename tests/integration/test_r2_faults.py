"""Faults injected by a proxy in front of a real server: the client's retries (botocore's
standard mode) and ours (failed keys of a DeleteObjects) complete the work, only failed
keys are retried, permanent errors are not retried, and retries are bounded."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.adapters.s3 import R2CounterStore, StoreRetry
from engine.core.errors import StorageError
from engine.runtime.warmup import utc_day_start
from tests.fixtures.aio import run
from tests.fixtures.s3 import Fault, FaultProxy, S3Server, Seen, list_keys, seed_objects

pytestmark = pytest.mark.s3

FAST = StoreRetry(attempts=6, base_seconds=0.01, cap_seconds=0.05, throttle_seconds=0.01)
BODY = b'{"day": "2026-11-28", "count": 1}'
TOMORROW = utc_day_start(datetime.now(UTC)) + timedelta(days=1)


class Sleeps:
    """An injected sleep that records the delays and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _store(server: S3Server, **kw: object) -> R2CounterStore:
    return R2CounterStore(server.settings(), clock=lambda: datetime.now(UTC), **kw)  # type: ignore[arg-type]


def _seed(server: S3Server, n: int) -> list[tuple[str, str]]:
    org = str(uuid.uuid4())
    pairs = [(org, f"d{i}.example") for i in range(n)]
    seed_objects(server, [f"warmup/daily/{o}/{d}" for o, d in pairs], BODY)
    return pairs


def test_reset_completes_despite_5xx_429_resets_and_partial_failures(
    s3_server: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    pairs = _seed(s3_server, 1_500)
    deletes = itertools.count()
    lists = itertools.count()
    plan_for_deletes = [Fault.SERVER_ERROR, Fault.THROTTLE, Fault.RESET, Fault.PARTIAL]

    def plan(seen: Seen, index: int) -> Fault | None:
        if seen.is_delete_objects:
            n = next(deletes)
            return plan_for_deletes[n] if n < len(plan_for_deletes) else None
        return Fault.SERVER_ERROR if seen.method == "GET" and next(lists) == 1 else None

    proxy = fault_proxy(s3_server, plan)

    async def reset() -> int:
        async with _store(proxy.server, partial_retry=FAST) as store:
            return await store.reset(pairs, before=TOMORROW)

    assert run(reset()) == 1_500
    assert list_keys(s3_server) == []
    fired = sorted({fault.name for _, fault in proxy.faults})
    assert fired == ["PARTIAL", "RESET", "SERVER_ERROR", "THROTTLE"]


def test_partial_failure_retries_only_the_keys_that_failed(
    s3_server: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    pairs = _seed(s3_server, 200)
    first_delete = itertools.count()

    def plan(seen: Seen, index: int) -> Fault | None:
        return Fault.PARTIAL if seen.is_delete_objects and next(first_delete) == 0 else None

    proxy = fault_proxy(s3_server, plan, partial_keys=3)

    async def reset() -> int:
        async with _store(proxy.server, partial_retry=FAST) as store:
            return await store.reset(pairs, before=TOMORROW)

    assert run(reset()) == 200
    sent = [seen.delete_keys for seen in proxy.requests if seen.is_delete_objects]
    assert [len(keys) for keys in sent] == [200, 3]
    assert sent[1] == sent[0][:3]
    assert list_keys(s3_server) == []


def test_a_proxy_that_always_fails_makes_reset_give_up_after_the_clients_bounded_attempts(
    s3_server: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy(s3_server, lambda seen, index: Fault.SERVER_ERROR)
    sleeps = Sleeps()

    async def reset() -> int:
        server = proxy.server
        store = R2CounterStore(
            server.settings(max_attempts=4), clock=lambda: datetime.now(UTC), sleep=sleeps
        )
        async with store:
            return await store.reset([("o1", "a.example")], before=TOMORROW)

    with pytest.raises(StorageError) as info:
        run(reset())
    assert str(info.value) == (
        "R2 ListObjectsV2 warmup/daily/: HTTP 503 ServiceUnavailable after 4 attempts"
    )
    assert (info.value.transient, info.value.error_class) == (True, "server")
    assert len(proxy.requests) == 4  # the client's attempts, and no loop of ours around them
    assert sleeps.delays == []


def test_a_permanent_error_is_not_retried(
    s3_server: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy(s3_server, lambda seen, index: Fault.DENIED)
    sleeps = Sleeps()

    async def get() -> int:
        async with _store(proxy.server, sleep=sleeps) as store:
            return await store.get("o1", "a.example")

    with pytest.raises(StorageError) as info:
        run(get())
    assert str(info.value) == "R2 GetObject warmup/daily/o1/a.example: HTTP 403 AccessDenied"
    assert (info.value.transient, info.value.error_class) == (False, "auth")
    assert len(proxy.requests) == 1
    assert sleeps.delays == []


def test_keys_that_keep_failing_make_the_batch_give_up_naming_them(
    s3_server: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    pairs = _seed(s3_server, 10)
    proxy = fault_proxy(
        s3_server, lambda seen, index: Fault.PARTIAL if seen.is_delete_objects else None
    )
    sleeps = Sleeps()

    async def reset() -> int:
        async with _store(proxy.server, partial_retry=FAST, sleep=sleeps) as store:
            return await store.reset(pairs, before=TOMORROW)

    with pytest.raises(StorageError) as info:
        run(reset())
    assert str(info.value) == (
        "R2 reset of 10 warmup counters: gave up after 6 attempts:"
        " R2 DeleteObjects failed for 2 keys (InternalError)"
    )
    sent = [len(seen.delete_keys) for seen in proxy.requests if seen.is_delete_objects]
    assert sent == [10, 2, 2, 2, 2, 2]
    assert len(sleeps.delays) == 5


def test_the_client_retries_5xx_429_and_a_connection_reset_of_an_increment(
    s3_server: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    faults = [Fault.SERVER_ERROR, Fault.THROTTLE, Fault.RESET]
    proxy = fault_proxy(s3_server, lambda seen, i: faults[i] if i < len(faults) else None)
    sleeps = Sleeps()

    async def increment() -> int:
        async with _store(proxy.server, conflict_retry=FAST, sleep=sleeps) as store:
            return await store.increment("o1", "a.example", 7)

    assert run(increment()) == 7
    assert [seen.method for seen in proxy.requests] == ["GET", "GET", "GET", "GET", "PUT"]
    assert sleeps.delays == []  # botocore retried the read; no conflict, so none of ours
