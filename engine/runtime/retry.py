"""Retry decisions: pure functions of the policy, the attempt, the error and the clock.

Backoff is exponential from the initial delay, capped at the max delay, with full
jitter (a uniform draw from 0 to the cap, AWS's "full jitter"). A transient failure is
retried by the job's policy whatever the slot's age: the clock alone never turns it into
a permanent loss. Whether a late retry may run beside the job's next slot is the overlap
policy's business (``overlap: forbid`` queues them on the job's lock), and a ``latest``
job's older slot that a newer success overtook is recorded ``superseded``, not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.core.model import RetryPolicy


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


def decide(policy: RetryPolicy, *, attempt: int, transient: bool, rng: Rng) -> Decision:
    """What to do after attempt ``attempt`` failed."""
    if not transient:
        return GiveUp("permanent error")
    if attempt >= policy.max_attempts:
        return GiveUp(f"gave up after {attempt} of {policy.max_attempts} attempts")
    cap = backoff_cap(policy, attempt)
    delay = rng.uniform(0.0, cap) if policy.jitter else cap
    return Retry(delay_seconds=delay)
