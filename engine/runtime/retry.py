"""Retry decisions: pure functions of the policy, the attempt, the error and the clock.

Backoff is exponential from the initial delay, capped at the max delay, with full
jitter (a uniform draw from 0 to the cap, AWS's "full jitter"). Retries never reach
the job's next slot: the cap shrinks to the time left before it, and with no time
left the message dead-letters (the next run is due; retries must not pile up behind it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from engine.core.model import RetryPolicy
from engine.core.times import iso


class Rng(Protocol):
    """The random source (``random.Random`` fits)."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class Retry:
    delay_seconds: float


@dataclass(frozen=True)
class GiveUp:
    """No more retries: the message dead-letters with this reason."""

    reason: str


Decision = Retry | GiveUp


def backoff_cap(policy: RetryPolicy, attempt: int) -> float:
    """The longest delay allowed after failed attempt ``attempt`` (counted from 1)."""
    delay = float(policy.initial_delay_seconds)
    if policy.exponential:
        # Cap the exponent too: 2**attempt overflows floats long before 100 attempts matter.
        delay *= 2.0 ** min(attempt - 1, 62)
    return min(delay, float(policy.max_delay_seconds))


def decide(
    policy: RetryPolicy,
    *,
    attempt: int,
    transient: bool,
    now: datetime,
    next_slot: datetime | None,
    rng: Rng,
) -> Decision:
    """What to do after attempt ``attempt`` failed. ``next_slot`` is None when the job
    never fires again."""
    if not transient:
        return GiveUp("permanent error")
    if attempt >= policy.max_attempts:
        return GiveUp(f"gave up after {attempt} of {policy.max_attempts} attempts")
    cap = backoff_cap(policy, attempt)
    if next_slot is not None:
        # Keep a second in hand so that a retry is always strictly before the next slot.
        left = (next_slot - now).total_seconds() - 1.0
        if left <= 0:
            return GiveUp(f"no time left for a retry before the next slot {iso(next_slot)}")
        cap = min(cap, left)
    delay = rng.uniform(0.0, cap) if policy.jitter else cap
    return Retry(delay_seconds=delay)
