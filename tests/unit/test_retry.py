"""Retry decisions: exponential backoff, full jitter and the attempt limit, whatever the
slot's age: the clock alone never turns a transient failure into a loss."""

from __future__ import annotations

import random

import pytest

from engine.core.model import RetryPolicy
from engine.runtime.retry import GiveUp, Retry, backoff_cap, decide

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
    decisions = [decide(POLICY, attempt=a, transient=True, rng=rng) for a in (1, 2, 3)]
    assert rng.calls == [(0.0, 30.0), (0.0, 60.0), (0.0, 120.0)]
    assert decisions == [Retry(30.0), Retry(60.0), Retry(120.0)]


@pytest.mark.parametrize("seed", range(20))
def test_jittered_delays_stay_within_zero_and_the_cap(seed: int) -> None:
    rng = random.Random(seed)
    for attempt in range(1, POLICY.max_attempts):
        decision = decide(POLICY, attempt=attempt, transient=True, rng=rng)
        assert isinstance(decision, Retry)
        assert 0.0 <= decision.delay_seconds <= backoff_cap(POLICY, attempt)


def test_without_jitter_the_delay_is_the_cap() -> None:
    policy = RetryPolicy(initial_delay_seconds=30, max_delay_seconds=600, jitter=False)
    assert decide(policy, attempt=3, transient=True, rng=random.Random(0)) == Retry(120.0)


def test_without_exponential_backoff_every_delay_is_the_initial_delay() -> None:
    policy = RetryPolicy(initial_delay_seconds=45, exponential=False, jitter=False)
    assert [backoff_cap(policy, a) for a in (1, 2, 3, 4)] == [45, 45, 45, 45]


def test_permanent_error_dead_letters_at_the_first_attempt() -> None:
    decision = decide(POLICY, attempt=1, transient=False, rng=TopOfRange())
    assert decision == GiveUp("permanent error")


def test_last_allowed_attempt_dead_letters() -> None:
    decision = decide(POLICY, attempt=5, transient=True, rng=TopOfRange())
    assert decision == GiveUp("gave up after 5 of 5 attempts")


def test_every_attempt_before_the_last_retries_with_the_policys_full_delay() -> None:
    # Nothing about the slot or the clock takes part: a catch-up slot hours old, or one
    # whose next slot is a second away, gets the same retries as an on-time one.
    decisions = [decide(POLICY, attempt=a, transient=True, rng=TopOfRange()) for a in range(1, 5)]
    assert decisions == [Retry(30.0), Retry(60.0), Retry(120.0), Retry(240.0)]


def test_huge_attempt_numbers_stay_capped() -> None:
    policy = RetryPolicy(max_attempts=101, initial_delay_seconds=1, max_delay_seconds=43200)
    assert backoff_cap(policy, 100) == 43200
