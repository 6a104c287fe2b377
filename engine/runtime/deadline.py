"""One attempt's deadline: ``timeout_seconds`` bounds the whole run (the lock wait, every
statement and the action), not each statement. It is fixed when the attempt starts;
each wait then gets only what is left of it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from engine.core.errors import JobFailed
from engine.core.queries import query

T = TypeVar("T")
Monotonic = Callable[[], float]

# The server's statement_timeout fires first; the client's is the backstop for a
# server that stopped answering.
CLIENT_TIMEOUT_MARGIN = 5.0
# A statement may overrun the deadline by at most this much: the statement_timeout
# already in force is kept while it exceeds the time left by less (saves a round trip).
SLACK = 0.1


def whole_ms(seconds: float) -> int:
    """A timeout in whole milliseconds, rounded up, at least 1 (Postgres reads 0 as none)."""
    return max(1, math.ceil(seconds * 1000))


class _Tx(Protocol):
    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int: ...


class Deadline:
    """The end of one attempt, on the monotonic clock."""

    def __init__(self, seconds: int, monotonic: Monotonic) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._end = monotonic() + seconds
        # The transaction's statement_timeout, once the claim has set it.
        self.statement_timeout = float(seconds)

    def left(self) -> float:
        """Seconds left; past the deadline, a transient failure (the run is retried)."""
        left = self._end - self._monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> JobFailed:
        return JobFailed(
            f"the run exceeded its deadline of {self.seconds} s"
            " (timeout_seconds bounds the lock wait, every statement and the action)",
            transient=True,
            error_class="deadline_exceeded",
        )

    async def bound_statement(self, tx: _Tx) -> float:
        """Before a statement: make its statement_timeout end at the deadline (SET LOCAL,
        one round trip, skipped while the one in force overruns by less than ``SLACK``).
        Returns the client-side timeout for the statement's call."""
        left = self.left()
        if self.statement_timeout > left + SLACK:
            ms = whole_ms(left)
            await tx.execute(
                query("session.set_local_statement_timeout"),
                f"{ms}ms",
                timeout=left + CLIENT_TIMEOUT_MARGIN,
            )
            self.statement_timeout = ms / 1000
        return left + CLIENT_TIMEOUT_MARGIN

    async def bound(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` (the action) within what is left; not started past the deadline."""
        limit = asyncio.timeout(self.left())
        try:
            async with limit:
                return await work()
        except TimeoutError:
            if limit.expired():
                raise self.exceeded() from None
            raise
