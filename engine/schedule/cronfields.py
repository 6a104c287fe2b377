"""Cloudflare's cron fields: what one field is (its range and names), the items a field
is written as (kept as written), and their compilation into the values and day tests
Cloudflare matches, quirks included. The grammar that reads them is cronparse.py.
Ported from saffron, Copyright (c) 2020 Cloudflare, Inc., BSD-3-Clause: see
THIRD_PARTY_NOTICES.md at the root of the project (shipped in the wheel's licence files).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class Field:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()  # names[i] spells the value lo + i


MINUTE = Field("minute", 0, 59)
HOUR = Field("hour", 0, 23)
DOM = Field("day-of-month", 1, 31)
MONTH = Field("month", 1, 12, MONTHS)
DOW = Field("day-of-week", 1, 7, WEEKDAYS)  # 1 = SUN, as on Cloudflare
FIELDS = (MINUTE, HOUR, DOM, MONTH, DOW)
_MON, _FRI = 1, 5  # weekdays in day tests: 0 = SUN ... 6 = SAT

DayTest = Callable[[int, int, int], bool]  # (day, days in month, weekday) -> matches


@dataclass(frozen=True)
class Item:
    """One comma-separated item: ``kind`` is one, range or step; a step without an end
    (``*/5``, ``5/5``) runs to the field's maximum. ``*_named`` tell a name from digits."""

    kind: str
    start: int
    end: int
    step: int
    text: str
    start_named: bool = False
    end_named: bool = False
    star: bool = False
    explicit_end: bool = False


@dataclass(frozen=True)
class FieldAst:
    """A parsed field. ``special`` holds the one-item forms: dom ``L``, ``LW``, ``L-n``,
    ``L-nW``, ``nW``; dow ``xL`` and ``x#n``. ``star`` is a bare ``*``."""

    field: Field
    text: str
    star: bool = False
    items: tuple[Item, ...] = ()
    special: str = ""
    number: int = 0  # the day / offset / weekday that goes with ``special``
    nth: int = 0
    digit_day: bool = False  # the weekday of ``xL`` / ``x#n`` was written as digits


def item_values(f: Field, it: Item) -> set[int]:
    """The values Cloudflare matches for one item (saffron's normalize + add_ors)."""
    kind, a, b, k = it.kind, it.start, it.end, it.step
    if kind != "one" and a == b:
        return {a}
    if kind == "step" and k == 1:
        kind = "range"
    if kind == "one":
        return {a}
    if kind == "range":
        if a <= b:
            return set(range(a, b + 1))
        # Cloudflare's wrap-around also matches the value just before the start.
        return set(range(a - 1, f.hi + 1)) | set(range(f.lo, b + 1))
    if a <= b:
        return set(range(a, b + 1, k))
    # saffron chains bit positions (value - lo) with 1-based bounds here; mirror it.
    bits = [*range(a - f.lo, f.hi + 1), *range(f.lo, b - f.lo + 1)]
    return {x + f.lo for x in bits[::k] if x <= f.hi - f.lo}


def field_values(ast: FieldAst) -> frozenset[int]:
    if ast.star:
        return frozenset(range(ast.field.lo, ast.field.hi + 1))
    out: set[int] = set()
    for it in ast.items:
        out |= item_values(ast.field, it)
    return frozenset(out)


def render(f: Field, values: frozenset[int], *, steps: bool, names: bool, full: str = "*") -> str:
    """Compact, sorted text for a value set: ``*``, ``*/k`` or runs like ``1-5,9``."""
    s = sorted(values)
    if s == list(range(f.lo, f.hi + 1)):
        return full
    k = s[1] - s[0] if len(s) >= 2 else 0
    if steps and k >= 2 and s == list(range(f.lo, f.hi + 1, k)):
        return f"*/{k}"
    spell = (lambda v: f.names[v - f.lo]) if names else str
    parts: list[str] = []
    i = 0
    while i < len(s):
        # the longest arithmetic run from s[i]; steps only where allowed, and only for 3+ values
        k = s[i + 1] - s[i] if i + 1 < len(s) else 0
        j = i
        while j + 1 < len(s) and s[j + 1] - s[j] == k:
            j += 1
        if k == 1:
            parts.append(f"{spell(s[i])}-{spell(s[j])}")
        elif steps and j - i >= 2:
            parts.append(f"{spell(s[i])}-{spell(s[j])}/{k}")
        else:
            j = i
            parts.append(spell(s[i]))
        i = j + 1
    return ",".join(parts)


def day_test(dom: FieldAst, dow: FieldAst) -> DayTest:
    """Does a day match both day fields, by saffron's rules (OR when both restricted)?"""
    dom_ok, dow_ok = _dom_test(dom), _dow_test(dow)
    if dom_ok is None or dow_ok is None:  # a '*' field restricts nothing
        return dom_ok or dow_ok or _any_day
    return lambda d, dim, wd: dom_ok(d, dim, wd) or dow_ok(d, dim, wd)


def _any_day(day: int, dim: int, wd: int) -> bool:
    return True


def _dom_test(ast: FieldAst) -> DayTest | None:
    """saffron's DaysOfMonth::contains_date, case by case."""
    if ast.star:
        return None
    n, kind = ast.number, ast.special
    if kind == "L":
        return lambda d, dim, wd: d == dim
    if kind == "L-n":
        return lambda d, dim, wd: d + n == dim
    if kind == "LW":
        return lambda d, dim, wd: (0 < wd < 6 and d == dim) or (wd == _FRI and dim - d < 3)
    if kind == "L-nW":
        return lambda d, dim, wd: (
            (0 < wd < 6 and d + n == dim)
            or (wd == _MON and 0 <= d + n - dim < 3)
            or (wd == _FRI and d + n + 1 == dim)
        )
    if kind == "nW":
        return lambda d, dim, wd: (
            (0 < wd < 6 and d == n)
            or (wd == _MON and (d - 1 == n or (d == 3 and n == 1)))
            or (wd == _FRI and (d + 1 == n or (d + 2 == n and n == dim)))
        )
    values = field_values(ast)
    return lambda d, dim, wd: d in values


def _dow_test(ast: FieldAst) -> DayTest | None:
    if ast.star:
        return None
    target, nth = ast.number - 1, ast.nth
    if ast.special == "xL":
        return lambda d, dim, wd: wd == target and d + 7 > dim
    if ast.special == "x#n":
        return lambda d, dim, wd: wd == target and (d - 1) // 7 + 1 == nth
    weekdays = {v - 1 for v in field_values(ast)}
    return lambda d, dim, wd: wd in weekdays


def dom_text(ast: FieldAst) -> str:
    """The canonical text of a day-of-month field."""
    if ast.star:
        return "*"
    n = ast.number
    special = {"L": "L", "LW": "LW", "L-n": f"L-{n}", "L-nW": f"L-{n}W", "nW": f"{n}W"}
    return special.get(ast.special) or render(DOM, field_values(ast), steps=True, names=False)


def dow_text(ast: FieldAst) -> str:
    """The canonical text of a day-of-week field: names, SUN-SAT."""
    if ast.star:
        return "*"
    day = WEEKDAYS[ast.number - 1] if ast.special else ""
    if ast.special == "xL":
        return f"{day}L"
    if ast.special == "x#n":
        return f"{day}#{ast.nth}"
    return render(DOW, field_values(ast), steps=False, names=True, full="SUN-SAT")
