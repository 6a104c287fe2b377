"""The runtime's ports: what it needs from the world, as small protocols.

- :class:`Db` and :class:`Tx`: transactions on Postgres (``engine.adapters.pg``).
- :class:`SlotStore`: what the scheduling core (:mod:`engine.runtime.scheduling`) asks
  about jobs and slots: six questions, so that a test can answer them from dicts in memory
  (``tests/fixtures/memstore.py``). Its Postgres answer is
  :mod:`engine.runtime.slotstore`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Tx(Protocol):
    """One transaction (``engine.adapters.pg.Tx``)."""

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int: ...

    async def execute_inlined(self, sql: str, *args: Any, timeout: float | None = None) -> int: ...

    def at_commit(self, sql: str, *args: Any) -> None: ...

    async def fetch(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]: ...

    async def fetchrow(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> dict[str, Any] | None: ...

    async def with_connection(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work(connection)``: the driver's own connection, inside this transaction (a
        python action's argument); the driver's errors it raises come out translated."""
        ...


class Db(Protocol):
    """A source of transactions (``engine.adapters.pg.Database``)."""

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    def inline(self, sql: str, args: Sequence[Any]) -> str: ...

    async def fetch_one_statement(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """One statement in its own implicit transaction: one round trip, no BEGIN or
        COMMIT."""
        ...

    async def call_bounded(
        self, sql: str, *args: Any, statement_timeout_ms: int, timeout: float
    ) -> Any: ...


@dataclass(frozen=True)
class SlotFacts:
    """What is recorded about one (job, slot)."""

    ledger: str | None = None  # the slot's row in cronwright.runs: its status
    attempts: int = 0
    dispatched: bool = False  # cronwright sent it (cronwright.dispatched)
    paused: bool = False  # inside a runtime pause
    # Asked only for `latest` jobs (else False): a newer slot of the job was sent, runs or
    # ran (its ledger row is neither paused nor superseded, or it was dispatched).
    newer_active: bool = False


NO_FACTS = SlotFacts()


@dataclass(frozen=True)
class JobFacts:
    """What is recorded about one job."""

    first_seen: datetime | None = None  # cronwright.jobs: None, never seen
    paused_since: datetime | None = None  # its open runtime pause's start: None, none open


class SlotStore(Protocol):
    async def register(self, jobs: Sequence[str], at: datetime) -> Mapping[str, datetime]:
        """Record ``at`` as the first time the jobs were seen, for those never seen;
        returns every job's first-seen time."""
        ...

    async def first_seen(self, jobs: Sequence[str]) -> Mapping[str, datetime]:
        """The first-seen time of each job that has one (read only)."""
        ...

    async def facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> list[SlotFacts]:
        """The facts of each (job, slot), in order; ``latest[i]`` asks for ``newer_active`` of
        pair i."""
        ...

    async def jobs_and_facts(
        self, jobs: Sequence[str], pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> tuple[Mapping[str, JobFacts], list[SlotFacts]]:
        """In one question: the facts of each of ``jobs`` (an entry for each, recorded or
        not), and those of each (job, slot) as :meth:`facts` gives them."""
        ...

    async def open_facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> Mapping[int, SlotFacts]:
        """The facts of the pairs with no ledger row that were never dispatched, by
        position (every other pair's status is final, its ledger row's or ``queued``)."""
        ...
