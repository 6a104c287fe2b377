"""Fuzzing Executor.handle on a real Postgres with whatever a queue could deliver: any
JSON value (nested, huge strings, any ``type``, any ``scheduledFor`` string, extra keys),
decoded objects, and arbitrary bytes. Never an exception out of it; always one of the
five outcomes; a dead letter row for each dead-lettered delivery."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.runtime.outcome import Outcome
from tests.integration.executor_support import NOW, Harness, harness, make_job

pytestmark = [pytest.mark.postgres, pytest.mark.fuzz]

JOB = make_job()
OUTCOMES = {"succeeded", "retry", "dead_lettered", "duplicate", "paused"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.integers(0, 2_000_000).map(lambda n: "x" * n)  # a huge string
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30
)
# Slots near the harness's clock (whole hours: slots of the job; some just ahead of it),
# and times anywhere in Python's range, in and out of the sane one.
near_slots = st.integers(-72, 2).map(lambda h: NOW.replace(minute=0) + timedelta(hours=h))
any_times = st.datetimes(timezones=st.just(UTC)) | near_slots
slot_strings = (
    any_times.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    | any_times.map(lambda t: t.isoformat())
    | st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?(Z|\+00:00)?")
    | st.text()
)
messages = st.fixed_dictionaries(
    {
        "type": st.sampled_from([JOB.type, "test.nope", " ", ""]) | json_values,
        "scheduledFor": slot_strings | json_values,
    },
    optional={
        "correlationId": st.text() | json_values,
        "rerun": st.text(max_size=8) | json_values,
        "extra": json_values,
    },
)
# Messages the job can run, so that running, duplicates and reruns are fuzzed too.
runnable = st.fixed_dictionaries(
    {"type": st.just(JOB.type), "scheduledFor": near_slots.map(lambda t: f"{t:%Y-%m-%dT%H:%M}Z")},
    optional={"rerun": st.text(max_size=3), "correlationId": st.text(), "extra": json_values},
)
bodies = (
    runnable.map(json.dumps)
    | messages.map(json.dumps)  # text, as the local queue stores it
    | messages.map(lambda m: json.dumps(m).encode())  # bytes, as a pull delivers them
    | messages  # a decoded object
    | json_values.map(json.dumps)
    | st.binary()
    | st.text()
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def fuzz_harness(pg_dsn: str, loop: asyncio.AbstractEventLoop) -> Iterator[Harness]:
    """One harness (pool, executor) for every example of a test."""
    context = harness(pg_dsn, [(JOB, "SELECT 1")])
    h = loop.run_until_complete(context.__aenter__())
    try:
        yield h
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))


IDS = itertools.count()


# Any delivery count a transport can report: the usual few, and the extremes (a Postgres
# integer's, a 64-bit one's, beyond).
attempts = st.one_of(
    st.integers(1, 10),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30]),
    st.integers(1, 10**40),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies, attempt=attempts)
def test_any_delivery_ends_in_an_outcome_and_each_dead_letter_is_written(
    fuzz_harness: Harness, loop: asyncio.AbstractEventLoop, body: Any, attempt: int
) -> None:
    message_id = f"fuzz-{next(IDS)}"

    async def deliver() -> tuple[Outcome, int]:
        outcome = await fuzz_harness.executor.handle(body, message_id=message_id, attempt=attempt)
        rows = await fuzz_harness.query(
            "SELECT count(*) AS n FROM cronwright.dead_letters WHERE message_id = $1", message_id
        )
        return outcome, int(rows[0]["n"])

    outcome, letters = loop.run_until_complete(asyncio.wait_for(deliver(), 60))
    event(f"outcome: {outcome.status}")  # the mix shows with --hypothesis-show-statistics
    assert outcome.status in OUTCOMES
    if outcome.status == "dead_lettered":
        assert letters == 1, outcome
    if outcome.status == "retry":
        assert outcome.delay_seconds is not None and outcome.delay_seconds >= 0


def test_the_far_past_slot_of_issue_18_is_dead_lettered_with_its_reason(
    fuzz_harness: Harness, loop: asyncio.AbstractEventLoop
) -> None:
    body = json.dumps({"type": JOB.type, "scheduledFor": "0001-01-01T00:00:00Z"})
    outcome = loop.run_until_complete(
        fuzz_harness.executor.handle(body, message_id="far-past", attempt=1)
    )
    assert (outcome.status, outcome.reason) == (
        "dead_lettered",
        "'scheduledFor' 0001-01-01T00:00:00Z is before 1970-01-01T00:00:00Z, the earliest slot;"
        " give a time from 1970-01-01T00:00:00Z to a year after now",
    )
    rows = loop.run_until_complete(
        fuzz_harness.query(
            "SELECT reason FROM cronwright.dead_letters WHERE message_id = 'far-past'"
        )
    )
    assert rows == [{"reason": outcome.reason}]
    assert datetime(2026, 10, 31, 10, 5, tzinfo=UTC) == NOW  # the harness's clock
