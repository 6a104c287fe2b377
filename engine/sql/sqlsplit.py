"""Split rendered SQL into statements, and renumber each one's ``$n`` binds from ``$1``.

Quote-aware: a ``;`` or ``$1`` inside a string literal, a quoted identifier (an ``ident``
value such as ``x"; DROP TABLE y; --`` stays one identifier), a comment or a
dollar-quoted body is text, never a statement end or a bind parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_BIND = re.compile(r"\$(\d+)")


def segments(sql: str) -> Iterator[tuple[bool, str]]:
    """``(is_code, text)`` runs covering ``sql``: code, or one quoted string, quoted
    identifier, comment or dollar-quoted body (an unterminated one runs to the end)."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        end: int | None = None
        if c in "'\"":
            j = i + 1
            while j < n and not (sql[j] == c and sql[j + 1 : j + 2] != c):
                j += 2 if sql[j] == c else 1  # a doubled quote is an escaped quote
            end = min(j + 1, n)
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            end = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            end = n if j < 0 else j + 2
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)):
            j = sql.find(m.group(0), m.end())
            end = n if j < 0 else j + len(m.group(0))
        if end is None:
            i += 1
            continue
        if start < i:
            yield True, sql[start:i]
        yield False, sql[i:end]
        start = i = end
    if start < n:
        yield True, sql[start:]


def split(sql: str) -> list[list[tuple[bool, str]]]:
    """The statements of ``sql`` (split at top-level ``;``) as segment lists, without the
    ones that hold nothing but blanks and comments."""
    statements: list[list[tuple[bool, str]]] = [[]]
    for is_code, text in segments(sql):
        if not is_code:
            statements[-1].append((False, text))
            continue
        parts = text.split(";")
        for k, part in enumerate(parts):
            if k:
                statements.append([])
            statements[-1].append((True, part))
    return [s for s in statements if any(code and text.strip() for code, text in s)]


def renumber(statement: list[tuple[bool, str]]) -> tuple[str, list[int]]:
    """The statement's text with its binds renumbered from ``$1`` in order of first use,
    and the original numbers they stand for."""
    numbers: dict[int, int] = {}

    def sub(m: re.Match[str]) -> str:
        old = int(m.group(1))
        numbers.setdefault(old, len(numbers) + 1)
        return f"${numbers[old]}"

    text = "".join(_BIND.sub(sub, t) if code else t for code, t in statement)
    return text.strip(), list(numbers)
