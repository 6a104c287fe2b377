"""The Postgres adapter: the only module that imports asyncpg.

It opens a pool with timeouts from ``DATABASE_URL`` (see :mod:`engine.adapters.pgurl`) and
translates every driver error into :class:`DatabaseError` in one place, classified by
SQLSTATE. No text built here ever contains the password.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import asyncpg

from engine.adapters import pgliteral
from engine.adapters.pgerrors import DRIVER_ERRORS, translated
from engine.adapters.pgurl import ConnectOptions, masked, options, scrub
from engine.core.errors import ConfigError, DatabaseError

log = logging.getLogger(__name__)


# SQLSTATE codes worth their own name; everything else is named by its class.
def _count(status: str) -> int:
    """Rows affected, from a command tag like ``INSERT 0 5`` or ``UPDATE 3``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _no_session_state(conn: Any) -> None:
    """A pool ``reset`` for connections that only ever ran self-contained transactions:
    nothing to reset, unless a failed ROLLBACK left a transaction open (then end it, so
    the next user never inherits it)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Tx:
    """One connection inside one transaction. Results come back as plain Python.

    BEGIN is not sent on its own: it travels with the transaction's first statement when
    that one is :meth:`execute_inlined`, and statements queued with :meth:`at_commit`
    travel with COMMIT. A job's transaction thus takes three round trips, not five.
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
                await self._conn.execute("BEGIN", timeout=self.timeout)

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
            text = "BEGIN;\n" + text
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

    async def commit(self) -> None:
        """The queued statements and COMMIT, in one round trip (none at all for a
        transaction that never ran a statement)."""
        if not self.begun and not self._pending:
            return
        parts = ([] if self.begun else ["BEGIN"]) + self._pending + ["COMMIT"]
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


class Database:
    """An asyncpg pool plus the secrets to keep out of error text."""

    def __init__(
        self, pool: Any, opts: ConnectOptions, *, acquire_timeout: float, call_timeout: float
    ) -> None:
        self._pool = pool
        self.options = opts
        self._acquire_timeout = acquire_timeout
        self._call_timeout = call_timeout

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        acquire_timeout: float = 30.0,
        call_timeout: float = 60.0,
        session_reset: bool = True,
    ) -> AsyncIterator[Database]:
        """Open a pool. ``session_reset=False`` skips asyncpg's per-release reset query
        (``RESET ALL``, ``UNLISTEN *``, ...), a round trip per transaction, for callers
        whose transactions leave no session state: asyncpg still rolls back an open
        transaction on release."""
        opts = options(url, env_sslmode=os.environ.get("PGSSLMODE"))
        tls: dict[str, Any] = {}
        if opts.verify_with_system_cas:
            tls["ssl"] = ssl.create_default_context()  # verify-full against the system's CAs
        try:
            with translated(opts.secrets, f"cannot connect to {opts.redacted}"):
                pool = await asyncio.wait_for(
                    asyncpg.create_pool(
                        opts.dsn,
                        min_size=min_size,
                        max_size=max_size,
                        timeout=connect_timeout,
                        statement_cache_size=opts.statement_cache_size,
                        reset=None if session_reset else _no_session_state,
                        **tls,
                    ),
                    connect_timeout * 2,
                )
        except (ValueError, OverflowError) as exc:  # asyncpg's DSN parser, past pgurl.check
            raise ConfigError(
                f"DATABASE_URL {masked(url)} is malformed: {scrub(str(exc), opts.secrets)}"
            ) from None
        try:
            yield cls(pool, opts, acquire_timeout=acquire_timeout, call_timeout=call_timeout)
        finally:
            await cls._close(pool, opts, connect_timeout)

    @staticmethod
    async def _close(pool: Any, opts: ConnectOptions, timeout: float) -> None:
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except (TimeoutError, *DRIVER_ERRORS) as exc:
            # A graceful close waits for busy connections; past the timeout, cut them.
            log.debug("pool close failed, terminating: %s", scrub(str(exc), opts.secrets))
            pool.terminate()

    def transaction(self) -> _Transaction:
        """Commit when the block exits normally, roll back when it raises."""
        return _Transaction(self)

    async def _quietly(self, what: str, cleanup: Callable[[], Awaitable[object]]) -> None:
        try:
            # Called inside the try: asyncpg checks the connection when called, not awaited.
            await cleanup()
        except (TimeoutError, *DRIVER_ERRORS) as exc:
            log.debug("%s failed: %s", what, scrub(str(exc), self.options.secrets))

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """A read in its own short transaction."""
        async with self.transaction() as tx:
            return await tx.fetch(sql, *args)

    async def fetch_one_statement(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """One statement in its own implicit transaction: one round trip, no BEGIN/COMMIT
        (a queue claim, a lease extension)."""
        secrets = self.options.secrets
        with translated(secrets):
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                records = await conn.fetch(sql, *args, timeout=timeout or self._call_timeout)
        return [dict(r) for r in records]

    @asynccontextmanager
    async def listening(self, channel: str, wake: Callable[[], None]) -> AsyncIterator[None]:
        """Call ``wake`` on every NOTIFY on ``channel`` while the block runs. Uses a
        connection of its own, outside the pool."""
        secrets = self.options.secrets
        with translated(secrets, "cannot LISTEN"):
            conn = await asyncpg.connect(self.options.dsn, timeout=self._acquire_timeout)
            await conn.add_listener(channel, lambda *_: wake())
        try:
            yield
        finally:
            await self._quietly("close listener", lambda: conn.close(timeout=self._acquire_timeout))


class _Transaction:
    """``async with db.transaction() as tx``: a class rather than a generator, since
    every job's run goes through it."""

    __slots__ = ("_conn", "_db", "_tx")

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __aenter__(self) -> Tx:
        db = self._db
        secrets = db.options.secrets
        with translated(secrets):
            if db._pool.get_idle_size():
                # A connection is free: acquire takes it without waiting (one that must
                # reconnect is bounded by the connect timeout), so skip the timer.
                self._conn = await db._pool.acquire()
            else:
                # asyncio.timeout, not acquire(timeout=): that one runs the wait as a task
                # of its own.
                async with asyncio.timeout(db._acquire_timeout):
                    self._conn = await db._pool.acquire()
        self._tx = Tx(self._conn, secrets, db._call_timeout)
        return self._tx

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # BEGIN, COMMIT and ROLLBACK are bounded like every statement (asyncpg's own
        # timeout, no extra task): a network partition during COMMIT must not hang the
        # consumer for the TCP timeout. A COMMIT that timed out is ambiguous, which the
        # ledger absorbs (a redelivery finds the slot succeeded: duplicate).
        if exc is not None:
            await self._abandon()
            return
        try:
            await self._tx.commit()
        except BaseException:
            await self._abandon()
            raise
        db = self._db
        with translated(db.options.secrets):
            await db._pool.release(self._conn, timeout=db._acquire_timeout)

    async def _abandon(self) -> None:
        """Roll back (if anything was sent) and release. The error being raised explains
        the failure; a failed cleanup on a connection that is already gone only adds noise
        (the pool discards it)."""
        db, conn = self._db, self._conn
        if self._tx.begun:
            await db._quietly(
                "rollback", lambda: conn.execute("ROLLBACK", timeout=db._call_timeout)
            )
        await db._quietly("release", lambda: db._pool.release(conn, timeout=db._acquire_timeout))
