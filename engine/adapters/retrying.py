"""The one transport-retry helper, for clients that have no retries of their own
(botocore has its own; the job's retry policy is ``engine.runtime.retry``).

A call is retried while it raises a transient :class:`JobFailed`, a bounded number of
times, with exponential backoff; a server's ``Retry-After`` (carried on the error as
``retry_after``) replaces the backoff, capped so a bad header cannot stall us for hours.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.core.errors import JobFailed
from engine.core.times import Sleep

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Backoff:
    attempts: int = 3
    initial: float = 0.5
    maximum: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait after failed attempt ``attempt`` (counted from 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        return float(min(self.maximum, self.initial * 2.0 ** (attempt - 1)))


async def retrying(call: Callable[[], Awaitable[T]], backoff: Backoff, sleep: Sleep) -> T:
    """``await call()``, again after each transient failure, at most ``backoff.attempts``
    times in all; the last error is raised."""
    attempt = 1
    while True:
        try:
            return await call()
        except JobFailed as err:
            if not err.transient or attempt >= backoff.attempts:
                raise
            delay = backoff.delay(attempt, getattr(err, "retry_after", None))
            log.warning(
                "%s; retrying in %gs (attempt %d of %d)", err, delay, attempt, backoff.attempts
            )
            await sleep(delay)
            attempt += 1
