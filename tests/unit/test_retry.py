"""Retry decisions: exponential backoff, full jitter, attempt limit, next-slot bound."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from engine.core.model import RetryPolicy
from engine.runtime.retry import GiveUp, Retry, backoff_cap, decide

NOW = datetime(2026, 10, 31, 10, 5, tzinfo=UTC)
NEXT_SLOT = datetime(2026, 10, 31, 11, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=5, initial_delay_seconds=30, max_delay_seconds=600)


class TopOfRange:
    """An rng that always draws the largest value, and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return b


def test_backoff_doubles_from_the_initial_delay_until_the_max_delay() -> None:
    caps = [backoff_cap(POLICY, attempt) for attempt in range(1, 8)]
    assert caps == [30, 60, 120, 240, 480, 600, 600]


def test_full_jitter_draws_between_zero_and_the_cap() -> None:
    rng = TopOfRange()
    decisions = [
        decide(POLICY, attempt=a, transient=True, now=NOW, next_slot=NEXT_SLOT, rng=rng)
        for a in (1, 2, 3)
    ]
    assert rng.calls == [(0.0, 30.0), (0.0, 60.0), (0.0, 120.0)]
    assert decisions == [Retry(30.0), Retry(60.0), Retry(120.0)]


@pytest.mark.parametrize("seed", range(20))
def test_jittered_delays_stay_within_zero_and_the_cap(seed: int) -> None:
    rng = random.Random(seed)
    far = NOW + timedelta(days=1)
    for attempt in range(1, POLICY.max_attempts):
        decision = decide(POLICY, attempt=attempt, transient=True, now=NOW, next_slot=far, rng=rng)
        assert isinstance(decision, Retry)
        assert 0.0 <= decision.delay_seconds <= backoff_cap(POLICY, attempt)


def test_without_jitter_the_delay_is_the_cap() -> None:
    policy = RetryPolicy(initial_delay_seconds=30, max_delay_seconds=600, jitter=False)
    decision = decide(
        policy, attempt=3, transient=True, now=NOW, next_slot=NEXT_SLOT, rng=random.Random(0)
    )
    assert decision == Retry(120.0)


def test_without_exponential_backoff_every_delay_is_the_initial_delay() -> None:
    policy = RetryPolicy(initial_delay_seconds=45, exponential=False, jitter=False)
    assert [backoff_cap(policy, a) for a in (1, 2, 3, 4)] == [45, 45, 45, 45]


def test_permanent_error_dead_letters_at_the_first_attempt() -> None:
    decision = decide(
        POLICY, attempt=1, transient=False, now=NOW, next_slot=NEXT_SLOT, rng=TopOfRange()
    )
    assert decision == GiveUp("permanent error")


def test_last_allowed_attempt_dead_letters() -> None:
    decision = decide(POLICY, attempt=5, transient=True, now=NOW, next_slot=None, rng=TopOfRange())
    assert decision == GiveUp("gave up after 5 of 5 attempts")


def test_attempt_before_the_last_still_retries() -> None:
    decision = decide(POLICY, attempt=4, transient=True, now=NOW, next_slot=None, rng=TopOfRange())
    assert decision == Retry(240.0)


def test_retry_close_to_the_next_slot_is_capped_to_the_time_left() -> None:
    now = NEXT_SLOT - timedelta(seconds=60)
    decision = decide(
        POLICY, attempt=2, transient=True, now=now, next_slot=NEXT_SLOT, rng=TopOfRange()
    )
    assert decision == Retry(59.0)


def test_no_time_left_before_the_next_slot_dead_letters() -> None:
    now = NEXT_SLOT - timedelta(seconds=1)
    decision = decide(
        POLICY, attempt=1, transient=True, now=now, next_slot=NEXT_SLOT, rng=TopOfRange()
    )
    assert decision == GiveUp("no time left for a retry before the next slot 2026-10-31T11:00:00Z")


def test_retry_landing_just_before_the_next_slot_is_allowed() -> None:
    now = NEXT_SLOT - timedelta(seconds=61)
    decision = decide(
        POLICY, attempt=2, transient=True, now=now, next_slot=NEXT_SLOT, rng=TopOfRange()
    )
    assert decision == Retry(60.0)


def test_no_retry_is_ever_scheduled_at_or_after_the_next_slot() -> None:
    rng = random.Random(7)
    for seconds_left in range(0, 1300, 7):
        now = NEXT_SLOT - timedelta(seconds=seconds_left)
        for attempt in range(1, POLICY.max_attempts + 1):
            decision = decide(
                POLICY, attempt=attempt, transient=True, now=now, next_slot=NEXT_SLOT, rng=rng
            )
            if isinstance(decision, Retry):
                assert now + timedelta(seconds=decision.delay_seconds) < NEXT_SLOT


def test_a_job_that_never_fires_again_is_bounded_by_attempts_only() -> None:
    decision = decide(POLICY, attempt=1, transient=True, now=NOW, next_slot=None, rng=TopOfRange())
    assert decision == Retry(30.0)


def test_huge_attempt_numbers_stay_capped() -> None:
    policy = RetryPolicy(max_attempts=101, initial_delay_seconds=1, max_delay_seconds=43200)
    assert backoff_cap(policy, 100) == 43200
