"""Parameters written into a statement's text as SQL literals, for the few statements of
our own that travel by the simple query protocol: several statements in one round trip
(``BEGIN; <claim>`` and ``<success>; <ack>; COMMIT``), which bind parameters cannot do.

Only values are ever inlined, never SQL, and only into cronwright's own statements,
whose ``$n`` markers stand outside any string or comment. Strings become ``E'...'``
literals, with backslashes and quotes doubled, which read the same whether or not
``standard_conforming_strings`` is on; every other type gets an explicit cast, so the
server reads back exactly the value given.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from engine.core.errors import DatabaseError

_PARAM = re.compile(r"\$(\d+)")


def _text(value: str) -> str:
    if "\x00" in value:
        raise DatabaseError(
            "a text value contains a NUL character, which PostgreSQL text cannot hold",
            transient=False,
            error_class="data_exception",
        )
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _integer(value: int) -> str:
    # Parenthesised when negative: "x-$1" must not become the comment "x--1".
    return f"({value})" if value < 0 else str(value)


def _float(value: float) -> str:
    if math.isnan(value):
        return "'NaN'::float8"
    if math.isinf(value):
        return "'Infinity'::float8" if value > 0 else "'-Infinity'::float8"
    return f"({value!r}::float8)"


def _datetime(value: datetime) -> str:
    cast = "timestamptz" if value.tzinfo is not None else "timestamp"
    return f"'{value.isoformat()}'::{cast}"


_WRITERS: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "NULL",
    bool: lambda v: "true" if v else "false",
    int: _integer,
    float: _float,
    str: _text,
    datetime: _datetime,
    date: lambda v: f"'{v.isoformat()}'::date",
    UUID: lambda v: f"'{v}'::uuid",
}


def literal(value: Any) -> str:
    """One value as a SQL literal that the server reads back as that value."""
    writer = _WRITERS.get(type(value))
    if writer is None:  # a subclass: the first base we know, bool before int
        writer = next((w for t, w in _WRITERS.items() if isinstance(value, t)), None)
    if writer is None:
        raise DatabaseError(
            f"cannot write a {type(value).__name__} as a SQL literal",
            transient=False,
            error_class="data_exception",
        )
    return writer(value)


@functools.lru_cache(maxsize=256)
def _pieces(sql: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``sql`` cut at its ``$n`` markers: the texts around them and the numbers."""
    parts = _PARAM.split(sql)
    return tuple(parts[0::2]), tuple(int(n) for n in parts[1::2])


def inline(sql: str, args: Sequence[Any]) -> str:
    """``sql`` with each ``$n`` replaced by the literal of ``args[n-1]``."""
    texts, numbers = _pieces(sql)
    out = [texts[0]]
    for n, text in zip(numbers, texts[1:], strict=True):
        if not 1 <= n <= len(args):
            raise DatabaseError(
                f"${n} has no parameter ({len(args)} given)",
                transient=False,
                error_class="syntax_error",
            )
        out.append(literal(args[n - 1]))
        out.append(text)
    return "".join(out)
