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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from engine.adapters import pgliteral, pgtimes
from engine.adapters.pgerrors import DRIVER_ERRORS, translated
from engine.adapters.pgpin import Pins
from engine.adapters.pgtx import PgTx
from engine.adapters.pgurl import ConnectOptions, masked, options, scrub
from engine.core.errors import ConfigError
from engine.core.queries import query

log = logging.getLogger(__name__)
T = TypeVar("T")


def _pool_floor_quiet(record: logging.LogRecord) -> bool:
    """asyncpg's pool logs a full traceback each time it fails to reopen its idle
    connections while the server is away; the services already say, once per interval,
    that the database is unreachable (engine.app.health). Kept at debug."""
    if record.getMessage().startswith("Failed to restore the pool connection floor"):
        return log.isEnabledFor(logging.DEBUG)
    return True


logging.getLogger("asyncpg.pool").addFilter(_pool_floor_quiet)

# Raised by a statement that checks the session's statement_timeout before it starts
# (cronwright.run_slot, migration 0007) when it is not the one the call needs.
STATEMENT_TIMEOUT_UNSET = "CW001"


async def _no_session_state(conn: Any) -> None:
    """A pool ``reset`` for connections that only ever ran self-contained transactions:
    nothing to reset, unless a failed ROLLBACK left a transaction open (then end it, so
    the next user never inherits it)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _initializer(query_logger: Callable[[Any], None] | None) -> Callable[[Any], Awaitable[None]]:
    """What every new pooled connection gets: the timestamptz codec (aware, finite:
    :mod:`engine.adapters.pgtimes`), and the query logger when there is one."""

    async def init(conn: Any) -> None:
        await pgtimes.install(conn)
        if query_logger is not None:
            conn.add_query_logger(query_logger)

    return init


class Database:
    """An asyncpg pool plus the secrets to keep out of error text."""

    def __init__(
        self, pool: Any, opts: ConnectOptions, *, acquire_timeout: float, call_timeout: float
    ) -> None:
        self._pool = pool
        self.options = opts
        self._acquire_timeout = acquire_timeout
        self._pins = Pins()
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
        query_logger: Callable[[Any], None] | None = None,
    ) -> AsyncIterator[Database]:
        """Open a pool. ``session_reset=False`` skips asyncpg's per-release reset query
        (``RESET ALL``, ``UNLISTEN *``, ...), a round trip per transaction, for callers
        whose transactions leave no session state: asyncpg still rolls back an open
        transaction on release. ``query_logger`` is called with each statement a pooled
        connection sends (asyncpg's ``LoggedQuery``): the benchmarks count round trips
        with it."""
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
                        init=_initializer(query_logger),
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

    def inline(self, sql: str, args: Sequence[Any]) -> str:
        """``sql`` with its ``$n`` parameters written in as SQL literals
        (:mod:`engine.adapters.pgliteral`); DatabaseError for a value that cannot be."""
        return pgliteral.inline(sql, args)

    async def call_bounded(
        self, sql: str, *args: Any, statement_timeout_ms: int, timeout: float
    ) -> Any:
        """One statement in its own implicit transaction, in one round trip, under a
        server-side statement_timeout of ``statement_timeout_ms``; returns its one value.

        statement_timeout is armed when a statement starts, so it must be the session's
        already: the statement checks that itself and raises SQLSTATE CW001 (without
        doing anything) when it is not. Then the session's value is set on the same
        connection and the statement called again: once per connection, while the calls
        need the same timeout. Where a session setting does not stick (PgBouncer in
        transaction mode), the third try sets it for one transaction of its own."""
        return await self._with_connection(
            lambda conn: self._call_setting_timeout(conn, sql, args, statement_timeout_ms, timeout)
        )

    @staticmethod
    async def _call_setting_timeout(
        conn: Any, sql: str, args: Sequence[Any], ms: int, timeout: float
    ) -> Any:
        for set_first in (False, True):  # as it is; after setting the session's
            if set_first:
                await conn.fetchval(
                    query("session.set_statement_timeout"), f"{ms}ms", False, timeout=timeout
                )
            try:
                return await conn.fetchval(sql, *args, timeout=timeout)
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != STATEMENT_TIMEOUT_UNSET:
                    raise
        async with conn.transaction():  # the session's did not stick: this transaction's
            await conn.fetchval(
                query("session.set_statement_timeout"), f"{ms}ms", True, timeout=timeout
            )
            return await conn.fetchval(sql, *args, timeout=timeout)

    async def _with_connection(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work(connection)`` on a pooled connection, released afterwards."""
        with translated(self.options.secrets):
            conn = await self._acquire()
            try:
                result = await work(conn)
            except BaseException:
                await self._quietly("release", lambda: self._release(conn))
                raise
            await self._release(conn)
        return result

    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[None]:
        """While the block runs, the calling task keeps one connection of the pool for
        all its statements and transactions (:mod:`engine.adapters.pgpin`)."""
        task = self._pins.start()
        try:
            yield
        finally:
            conn = self._pins.stop(task)
            if conn is not None:
                await self._quietly("release", lambda: self._pool_release(conn))

    async def _acquire(self) -> Any:
        conn = await self._pins.take(self._pool_acquire, self._pool_release_quietly)
        return conn if conn is not None else await self._pool_acquire()

    async def _release(self, conn: Any) -> None:
        if not self._pins.give_back(conn):
            await self._pool_release(conn)

    async def _pool_acquire(self) -> Any:
        # asyncio.timeout, not acquire(timeout=): that one runs the wait as a task of its
        # own.
        async with asyncio.timeout(self._acquire_timeout):
            return await self._pool.acquire()

    async def _pool_release(self, conn: Any) -> None:
        await self._pool.release(conn, timeout=self._acquire_timeout)

    async def _pool_release_quietly(self, conn: Any) -> None:
        await self._quietly("release", lambda: self._pool_release(conn))

    async def fetch_one_statement(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """One statement in its own implicit transaction: one round trip, no BEGIN/COMMIT
        (a queue claim, a lease extension)."""
        records = await self._with_connection(
            lambda conn: conn.fetch(sql, *args, timeout=timeout or self._call_timeout)
        )
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

    async def __aenter__(self) -> PgTx:
        db = self._db
        secrets = db.options.secrets
        with translated(secrets):
            self._conn = await db._acquire()
        self._tx = PgTx(self._conn, secrets, db._call_timeout)
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
            await db._release(self._conn)

    async def _abandon(self) -> None:
        """Roll back (if anything was sent) and release. The error being raised explains
        the failure; a failed cleanup on a connection that is already gone only adds noise
        (the pool discards it)."""
        db, conn = self._db, self._conn
        if self._tx.begun:
            await db._quietly(
                "rollback", lambda: conn.execute("ROLLBACK", timeout=db._call_timeout)
            )
        await db._quietly("release", lambda: db._release(conn))
