"""One connection inside one transaction (:class:`PgTx`), for :mod:`engine.adapters.pg`.

BEGIN travels with the transaction's first statement when that one is inlined, and
statements queued for the commit travel with COMMIT.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from engine.adapters import pgliteral
from engine.adapters.pgerrors import ASYNCPG_ERRORS, translated
from engine.core.errors import DatabaseError
from engine.core.queries import query

T = TypeVar("T")


def _count(status: str) -> int:
    """Rows affected, from a command tag like ``INSERT 0 5`` or ``UPDATE 3``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgTx:
    """One connection inside one transaction. Results come back as plain Python.

    BEGIN is not sent on its own: it travels with the transaction's first statement when
    that one is :meth:`execute_inlined`, and statements queued with :meth:`at_commit`
    travel with COMMIT. A job with an action thus takes three round trips, not five (a
    SQL job takes one: :meth:`Database.call_bounded`).
    """

    def __init__(self, conn: Any, secrets: tuple[str, ...], timeout: float) -> None:
        self._conn = conn
        self._secrets = secrets
        self.timeout = timeout
        self.begun = False  # BEGIN has been sent
        self._pending: list[str] = []  # inlined statements to send with COMMIT

    async def _begin(self) -> None:
        if not self.begun:
            self.begun = True  # first: a BEGIN that fails midway is rolled back
            with translated(self._secrets):
                await self._conn.execute(query("session.begin"), timeout=self.timeout)

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int:
        """Run one statement; return the rows it affected."""
        await self._begin()
        with translated(self._secrets):
            status = await self._conn.execute(sql, *args, timeout=timeout or self.timeout)
        return _count(status)

    async def execute_inlined(self, sql: str, *args: Any, timeout: float | None = None) -> int:
        """Run one of cronwright's own statements with its parameters written in as SQL
        literals (:mod:`engine.adapters.pgliteral`), by the simple query protocol, so
        that it shares its round trip with BEGIN when it opens the transaction. Returns
        the row count of its command tag (for a SELECT, the rows it returned)."""
        text = pgliteral.inline(sql, args)
        if not self.begun:
            text = f"{query('session.begin')};\n{text}"
            self.begun = True
        with translated(self._secrets):
            status = await self._conn.execute(text, timeout=timeout or self.timeout)
        return _count(status)

    def at_commit(self, sql: str, *args: Any) -> None:
        """Queue one of cronwright's own statements (parameters inlined as above) to run
        last, in COMMIT's round trip. If it fails, the transaction rolls back and the
        error is raised where the transaction's block ends."""
        self._pending.append(pgliteral.inline(sql, args))

    async def script(self, sql: str, *, timeout: float | None = None) -> None:
        """Run several statements without parameters (migrations)."""
        await self._begin()
        with translated(self._secrets):
            await self._conn.execute(sql, timeout=timeout or self.timeout)

    async def fetch(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        await self._begin()
        with translated(self._secrets):
            records = await self._conn.fetch(sql, *args, timeout=timeout or self.timeout)
        return [dict(r) for r in records]

    async def fetchrow(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args, timeout=timeout)
        return rows[0] if rows else None

    async def with_connection(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work(connection)``: asyncpg's connection inside this transaction, for a
        python action. asyncpg's errors it raises are translated like every statement's
        (a serialization failure stays transient); its other errors are its own. If it
        ended the transaction (COMMIT or ROLLBACK on the connection), the ledger row
        could no longer commit with its effect: that is a permanent failure."""
        await self._begin()
        with translated(self._secrets, kinds=ASYNCPG_ERRORS):
            result = await work(self._conn)
        if not self._conn.is_in_transaction():
            raise DatabaseError(
                "the job's transaction was ended inside the action (a COMMIT or ROLLBACK"
                " on its connection), so its ledger row cannot commit with its effect",
                transient=False,
                error_class="transaction_ended",
                hint="leave the transaction to cronwright: what the action writes commits"
                " with the run",
            )
        return result

    async def commit(self) -> None:
        """The queued statements and COMMIT, in one round trip (none at all for a
        transaction that never ran a statement)."""
        if not self.begun and not self._pending:
            return
        parts = ([] if self.begun else [query("session.begin")]) + self._pending + ["COMMIT"]
        self.begun = True
        with translated(self._secrets):
            status = await self._conn.execute(";\n".join(parts), timeout=self.timeout)
        if status != "COMMIT":
            # Postgres answers COMMIT of an aborted transaction with ROLLBACK, no error.
            raise DatabaseError(
                "the transaction was rolled back at COMMIT (an error inside it was caught)",
                transient=False,
                error_class="rolled_back",
            )
