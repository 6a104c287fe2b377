"""asyncpg's errors as cronwright's: classified by SQLSTATE class (08, 40, 53, 57 are
transient; the rest permanent), named, and scrubbed of any secret before they leave the
adapter. A missing ``cronwright`` schema, table or function is :class:`NotMigrated`, with
the hint to migrate, whichever command met it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import TracebackType

import asyncpg

from engine.adapters.pgurl import scrub
from engine.core.errors import DatabaseError, NotMigrated

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

# What the server says when one of cronwright's own objects is missing (our statements
# always qualify them with the schema). A job's own tables keep their plain error.
_OURS_MISSING = {
    "3F000": re.compile(r'schema "cronwright" does not exist'),
    "42P01": re.compile(r'relation "cronwright\.[^"]+" does not exist'),
    "42883": re.compile(r"function cronwright\.\S+\(.*\) does not exist"),
}
MIGRATE_HINT = "cronwright's schema is missing or out of date: run cronwright db migrate"


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
        ours = _OURS_MISSING.get(sqlstate)
        if ours is not None and ours.fullmatch(message):
            return NotMigrated(
                f"{error_class} ({sqlstate}): {text}",
                transient=False,
                error_class=error_class,
                hint=MIGRATE_HINT,
            )
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


# The driver's own exception classes: what code given the raw connection (a python
# action) may see from it. That code's other errors, a file's OSError or its own
# TimeoutError, are its own, not the database's.
ASYNCPG_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
DRIVER_ERRORS = (*ASYNCPG_ERRORS, OSError, TimeoutError)


class translated:
    """Re-raise driver errors (``kinds``) as :class:`DatabaseError`. The cause is kept
    unless its text holds a secret. A class rather than a generator: it wraps every
    statement."""

    __slots__ = ("_context", "_kinds", "_secrets")

    def __init__(
        self,
        secrets: Iterable[str],
        context: str = "",
        kinds: tuple[type[BaseException], ...] = DRIVER_ERRORS,
    ) -> None:
        self._secrets = secrets
        self._context = context
        self._kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or not isinstance(exc, self._kinds):
            return
        secrets = tuple(self._secrets)
        err = translate(exc, secrets)
        if self._context:
            err = type(err)(
                f"{self._context}: {err.message}",
                transient=err.transient,
                error_class=err.error_class,
                hint=err.hint,
            )
        leaks = scrub(str(exc), secrets) != str(exc)
        raise err from (None if leaks else exc)
