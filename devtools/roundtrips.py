"""What a piece of code sends to Postgres, counted at the connection (asyncpg's query
logger): every statement, BEGIN and COMMIT included, and asyncpg's own look-ups of a new
statement's types. Once a statement is prepared and its types known (after a first
warm-up call), each one counted is one round trip. The benchmarks count
with it: a scheduler tick, a reconcile pass, a gauges' refresh."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from engine.adapters.pg import Database

#: What only opens or closes a transaction (the adapter's BEGIN sets the statement
#: timeout too: engine.adapters.pgtx).
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SET LOCAL STATEMENT_TIMEOUT TO DEFAULT")


def _control(sql: str) -> bool:
    parts = [p.strip().upper() for p in sql.split(";") if p.strip()]
    return all(p in _CONTROL for p in parts)


@dataclass
class RoundTrips:
    sent: list[str] = field(default_factory=list)

    def log(self, record: Any) -> None:
        self.sent.append(record.query)

    def clear(self) -> None:
        self.sent.clear()

    @property
    def trips(self) -> int:
        return len(self.sent)

    @property
    def queries(self) -> int:
        """The statements that ask or change something (not BEGIN or COMMIT alone)."""
        return sum(1 for q in self.sent if not _control(q))


@asynccontextmanager
async def counted(dsn: str, *, max_size: int = 4) -> AsyncIterator[tuple[Database, RoundTrips]]:
    """A database whose connections count what they send, as ``serve`` opens it."""
    trips = RoundTrips()
    async with Database.open(
        dsn, max_size=max_size, session_reset=False, query_logger=trips.log
    ) as db:
        yield db, trips
