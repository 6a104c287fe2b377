"""Pure parts of the warmup counters: key, body, day, error classes, backoff, rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

from engine.adapters.localstore import LocalDirectoryStore
from engine.adapters.s3 import StoreRetry
from engine.adapters.s3client import classify
from engine.core.errors import JobFailed, StorageError
from engine.runtime.warmup import (
    Counter,
    WarmupReset,
    counter_key,
    utc_day_start,
)
from tests.fixtures.aio import run


def test_key_is_warmup_daily_org_domain() -> None:
    org = UUID("7d7f6a2c-1111-4c1e-9a51-0b9d6a1f0c11")
    assert counter_key(org, "mail.example.com") == (
        "warmup/daily/7d7f6a2c-1111-4c1e-9a51-0b9d6a1f0c11/mail.example.com"
    )


def test_counter_body_round_trips_and_counts_only_its_day() -> None:
    counter = Counter(date(2026, 11, 28), 3)
    assert counter.encode() == b'{"day": "2026-11-28", "count": 3}'
    assert Counter.decode(counter.encode()) == counter
    assert counter.count_on(date(2026, 11, 28)) == 3
    assert counter.count_on(date(2026, 11, 29)) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"3",
        b"",
        b"{}",
        b'{"day": "2026-11-28"}',
        b'{"day": "x", "count": 1}',
        b'{"day": "2026-11-28", "count": -1}',
        b'{"day": "2026-11-28", "count": true}',
        b"\xff",
    ],
)
def test_bodies_we_did_not_write_decode_as_no_counter(raw: bytes) -> None:
    assert Counter.decode(raw) is None


def test_day_start_is_utc_midnight_of_the_utc_day() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert utc_day_start(datetime(2026, 11, 29, 1, 30, tzinfo=plus2)) == datetime(
        2026, 11, 28, tzinfo=UTC
    )
    assert utc_day_start(datetime(2026, 11, 28, 23, 59)) == datetime(2026, 11, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        (429, "SlowDown", (True, "throttled")),
        (None, "SlowDown", (True, "throttled")),
        (412, "PreconditionFailed", (True, "conflict")),
        (409, "ConditionalRequestConflict", (True, "conflict")),
        (404, "NoSuchKey", (False, "not_found")),
        (404, "NoSuchBucket", (False, "no_bucket")),
        (403, "SignatureDoesNotMatch", (False, "auth")),
        (403, "InvalidAccessKeyId", (False, "auth")),
        (401, None, (False, "auth")),
        (408, "RequestTimeout", (True, "timeout")),
        (500, "InternalError", (True, "server")),
        (503, "ServiceUnavailable", (True, "server")),
        (None, "InternalError", (True, "server")),
        (400, "MalformedXML", (False, "request")),
        (None, "AccessDenied", (False, "auth")),
    ],
)
def test_s3_errors_are_classified_by_status_and_code(
    status: int | None, code: str | None, verdict: tuple[bool, str]
) -> None:
    assert classify(status, code) == verdict


def test_backoff_is_full_jitter_exponential_capped_and_throttling_waits_longer() -> None:
    policy = StoreRetry(attempts=6, base_seconds=0.5, cap_seconds=3.0, throttle_seconds=1.0)
    server = StorageError("x", transient=True, error_class="server")
    throttled = StorageError("x", transient=True, error_class="throttled")
    assert [policy.delay(n, server, 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(2, server, 0.25) == 0.25
    assert policy.delay(1, throttled, 0.1) == 1.0


def test_reset_action_refuses_rows_without_the_domain_column(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path, clock=lambda: datetime(2026, 11, 28, tzinfo=UTC))
    rows = [{"organization_id": "o1", "domain": "a.example"}, {"organization_id": "o1"}]
    with pytest.raises(JobFailed) as info:
        run(WarmupReset(store)(rows, datetime(2026, 11, 28, tzinfo=UTC)))
    assert (
        str(info.value)
        == "warmup-reset: row 2 has no 'domain' column; select organization_id and domain"
    )
    assert (info.value.transient, info.value.error_class) == (False, "action_input")
