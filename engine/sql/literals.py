"""SQL literals for the few statements cronwright sends without bind parameters: the
last steps of a transaction (the ledger's success, the queue's ack), sent in the same
round trip as its COMMIT. Several statements travel together only in Postgres's simple
query protocol, which carries no parameters.

Only values cronwright itself produced (ints, floats, UTC timestamps, uuids, job names)
go through here, never a job template's values: those are always bind parameters.
"""

from __future__ import annotations

import math
from datetime import datetime
from uuid import UUID

from engine.core.errors import DatabaseError


def _bad(value: object, why: str) -> DatabaseError:
    return DatabaseError(
        f"invalid_parameter: {type(value).__name__} {why}",
        transient=False,
        error_class="invalid_parameter",
    )


def literal(value: object) -> str:
    """``value`` as a SQL literal whose meaning does not depend on the session's
    ``standard_conforming_strings`` (strings are ``E''`` literals)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(value, f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _bad(value, f"{value.isoformat()} has no time zone")
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, UUID):
        return f"'{value}'::uuid"
    if isinstance(value, str):
        if "\x00" in value:
            raise _bad(value, "holds a NUL character, which Postgres text cannot")
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    raise _bad(value, "has no SQL literal")
