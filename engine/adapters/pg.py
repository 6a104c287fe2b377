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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from engine.adapters.pgurl import ConnectOptions, masked, options, scrub
from engine.core.errors import ConfigError, DatabaseError

log = logging.getLogger(__name__)

# SQLSTATE codes worth their own name; everything else is named by its class.
_NAMED = {
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "53300": "too_many_connections",
    "57014": "query_canceled",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "55P03": "lock_not_available",
    "42601": "syntax_error",
    "42P01": "undefined_table",
    "42703": "undefined_column",
    "42704": "undefined_object",
    "42883": "undefined_function",
    "3F000": "invalid_schema_name",
    "3D000": "invalid_catalog_name",
    "28P01": "invalid_password",
}
_CLASSES = {
    "08": "connection_exception",
    "22": "data_exception",
    "23": "integrity_constraint_violation",
    "28": "invalid_authorization",
    "40": "transaction_rollback",
    "42": "syntax_error_or_access_rule_violation",
    "53": "insufficient_resources",
    "57": "operator_intervention",
}
# Retrying may help: the connection, the scheduler or the server's state was at fault,
# not the statement.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57"})
_TRANSIENT_CODES = frozenset({"55P03"})


def classify(sqlstate: str, message: str = "") -> tuple[str, bool]:
    """(error class, transient) for a SQLSTATE."""
    name = _NAMED.get(sqlstate) or _CLASSES.get(sqlstate[:2], "postgres_error")
    if sqlstate == "57014" and "statement timeout" in message:
        name = "statement_timeout"
    transient = sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_CODES
    return name, transient


def translate(exc: BaseException, secrets: Iterable[str] = ()) -> DatabaseError:
    """The one place driver and socket errors become :class:`DatabaseError`."""
    secrets = tuple(secrets)
    text = scrub(str(exc) or type(exc).__name__, secrets)
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        # str() of a server error appends DETAIL/HINT lines; keep one line.
        message = str(exc.args[0]) if exc.args else str(exc)
        text = scrub(message, secrets)
        error_class, transient = classify(sqlstate, message)
        constraint = getattr(exc, "constraint_name", None)
        if constraint and f'"{constraint}"' not in message:
            text = f'{text} (constraint "{scrub(str(constraint), secrets)}")'
        detail = getattr(exc, "detail", None)
        if detail:
            text += DatabaseError.DETAIL_MARK + scrub(str(detail), secrets)
        return DatabaseError(
            f"{error_class} ({sqlstate}): {text}", transient=transient, error_class=error_class
        )
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        error_class, transient = "client_configuration", False
    elif isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        error_class, transient = "invalid_parameter", False  # a bind value of the wrong type
    elif isinstance(exc, TimeoutError):
        error_class, transient = "timeout", True
    elif isinstance(exc, OSError | asyncpg.exceptions.InternalClientError) or (
        # A connection the server terminated surfaces as "connection is closed" on its next use.
        isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)
    ):
        error_class, transient = "connection", True
    elif isinstance(exc, asyncpg.InterfaceError):
        error_class, transient = "interface_error", False
    else:
        error_class, transient = "driver_error", False
    return DatabaseError(f"{error_class}: {text}", transient=transient, error_class=error_class)


_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


@contextmanager
def translated(secrets: Iterable[str], context: str = "") -> Iterator[None]:
    """Re-raise driver errors as :class:`DatabaseError`. The cause is kept unless its
    text holds a secret."""
    try:
        yield
    except _DRIVER_ERRORS as exc:
        err = translate(exc, secrets)
        if context:
            err = DatabaseError(
                f"{context}: {err.message}", transient=err.transient, error_class=err.error_class
            )
        leaks = any(s and s in str(exc) for s in secrets)
        raise err from (None if leaks else exc)


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
    """One connection inside one transaction. Results come back as plain Python."""

    def __init__(self, conn: Any, secrets: tuple[str, ...], timeout: float) -> None:
        self._conn = conn
        self._secrets = secrets
        self.timeout = timeout

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int:
        """Run one statement; return the rows it affected."""
        with translated(self._secrets):
            status = await self._conn.execute(sql, *args, timeout=timeout or self.timeout)
        return _count(status)

    async def script(self, sql: str, *, timeout: float | None = None) -> None:
        """Run several statements without parameters (migrations)."""
        with translated(self._secrets):
            await self._conn.execute(sql, timeout=timeout or self.timeout)

    async def fetch(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        with translated(self._secrets):
            records = await self._conn.fetch(sql, *args, timeout=timeout or self.timeout)
        return [dict(r) for r in records]

    async def fetchrow(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args, timeout=timeout)
        return rows[0] if rows else None


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
        except (TimeoutError, *_DRIVER_ERRORS) as exc:
            # A graceful close waits for busy connections; past the timeout, cut them.
            log.debug("pool close failed, terminating: %s", scrub(str(exc), opts.secrets))
            pool.terminate()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Commit when the block exits normally, roll back when it raises."""
        secrets = self.options.secrets
        with translated(secrets):
            # asyncio.timeout, not acquire(timeout=): that one runs the wait as a task of
            # its own, a cost on every transaction.
            async with asyncio.timeout(self._acquire_timeout):
                conn = await self._pool.acquire()
        try:
            # BEGIN, COMMIT and ROLLBACK are bounded like every statement (asyncpg's own
            # timeout, no extra task): a network partition during COMMIT must not hang
            # the consumer for the TCP timeout. A COMMIT that timed out is ambiguous,
            # which the ledger absorbs (a redelivery finds the slot succeeded: duplicate).
            with translated(secrets):
                await conn.execute("BEGIN", timeout=self._call_timeout)
            try:
                yield Tx(conn, secrets, self._call_timeout)
            except BaseException:
                await self._quietly(
                    "rollback", lambda: conn.execute("ROLLBACK", timeout=self._call_timeout)
                )
                raise
            with translated(secrets):
                status = await conn.execute("COMMIT", timeout=self._call_timeout)
            if status != "COMMIT":
                # Postgres answers COMMIT of an aborted transaction with ROLLBACK, no error.
                raise DatabaseError(
                    "the transaction was rolled back at COMMIT (an error inside it was caught)",
                    transient=False,
                    error_class="rolled_back",
                )
        except BaseException:
            # The error being raised explains the failure; a failed cleanup on a
            # connection that is already gone only adds noise (the pool discards it).
            await self._quietly(
                "release", lambda: self._pool.release(conn, timeout=self._acquire_timeout)
            )
            raise
        with translated(secrets):
            await self._pool.release(conn, timeout=self._acquire_timeout)

    async def _quietly(self, what: str, cleanup: Callable[[], Awaitable[object]]) -> None:
        try:
            # Called inside the try: asyncpg checks the connection when called, not awaited.
            await cleanup()
        except (TimeoutError, *_DRIVER_ERRORS) as exc:
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
