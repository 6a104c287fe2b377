"""Cloudflare's cron grammar, one field at a time: a port of the parser in ``saffron``
(the Rust crate behind Cron Triggers) that keeps how each item was written, plus the
compilation of items into the values Cloudflare matches, quirks included."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from engine.core.errors import CronError

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DIGITS = re.compile(r"[0-9]+")  # nom's digit1 is ASCII only; \d would accept other scripts


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


class _Cursor:
    def __init__(self, f: Field, text: str) -> None:
        self.f, self.s, self.i = f, text, 0

    def eat(self, ch: str) -> bool:
        if self.s.startswith(ch, self.i):
            self.i += 1
            return True
        return False

    def number(self) -> str | None:
        m = _DIGITS.match(self.s, self.i)
        if m is None:
            return None
        self.i = m.end()
        return m.group()

    def value(self) -> tuple[int, bool]:
        f = self.f
        digits = self.number()
        if digits is not None:
            v = _int(digits)
            if not f.lo <= v <= f.hi:
                hint = (
                    "Cloudflare numbers weekdays 1-7 from SUN; write SUN-SAT" if f is DOW else None
                )
                raise CronError(f"{f.name} '{digits}' is out of range {f.lo}-{f.hi}", hint=hint)
            return v, False
        word = self.s[self.i : self.i + 3]
        if f.names and word.isascii() and word.upper() in f.names:
            self.i += 3
            return f.lo + f.names.index(word.upper()), True
        self.unexpected()

    def bounded(self, what: str, lo: int, hi: int) -> int:
        digits = self.number()
        if digits is None:
            self.unexpected()
        v = _int(digits)
        if not lo <= v <= hi:
            where = f"{self.f.name} {what} '{digits}' in '{self.s}'"
            raise CronError(f"{where} is out of range {lo}-{hi}")
        return v

    def step(self) -> int:
        return self.bounded("step", 1, self.f.hi - self.f.lo)

    def item(self, *, allow_star: bool) -> Item:
        f, start_i = self.f, self.i
        star = allow_star and self.eat("*")
        a, a_named = (f.lo, False) if star else self.value()
        if self.eat("/"):
            return Item("step", a, f.hi, self.step(), self.s[start_i : self.i], a_named, star=star)
        if not self.eat("-"):
            return Item("one", a, a, 0, self.s[start_i : self.i], a_named, star=star)
        b, b_named = self.value()
        kind, k = ("step", self.step()) if self.eat("/") else ("range", 0)
        text = self.s[start_i : self.i]
        return Item(kind, a, b, k, text, a_named, b_named, star, explicit_end=True)

    def items(self, first: list[Item]) -> FieldAst:
        while self.eat(","):
            first.append(self.item(allow_star=True))
        return self.done(FieldAst(self.f, self.s, items=tuple(first)))

    def done(self, ast: FieldAst) -> FieldAst:
        if self.i != len(self.s):
            self.unexpected()
        return ast

    def unexpected(self) -> NoReturn:
        raise _Unexpected(self.i)


class _Unexpected(Exception):
    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


def _int(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 3 else 1000  # saffron reads a u8; big means bad


def _star_step(c: _Cursor) -> list[Item] | None:
    """After a leading ``*``: ``*/k`` starts a list, a bare ``*`` is the whole field."""
    if not c.eat("/"):
        return None
    return [Item("step", c.f.lo, c.f.hi, c.step(), c.s[: c.i], star=True)]


def _generic(c: _Cursor) -> FieldAst:
    if c.eat("*"):
        first = _star_step(c)
        if first is None:
            return c.done(FieldAst(c.f, c.s, star=True))
        return c.items(first)
    return c.items([c.item(allow_star=False)])


def _dom(c: _Cursor) -> FieldAst:
    if c.s.startswith("*") or c.s.startswith("L"):
        if c.eat("L"):
            if c.eat("-"):
                offset = c.bounded("offset", 1, 30)
                special = "L-nW" if c.eat("W") else "L-n"
                return c.done(FieldAst(DOM, c.s, special=special, number=offset))
            return c.done(FieldAst(DOM, c.s, special="LW" if c.eat("W") else "L"))
        return _generic(c)
    day, _ = c.value()
    if c.eat("W"):
        return c.done(FieldAst(DOM, c.s, special="nW", number=day))
    c.i = 0
    return c.items([c.item(allow_star=False)])


def _dow(c: _Cursor) -> FieldAst:
    if c.s.startswith("*"):
        return _generic(c)
    if c.eat("L"):  # a lone L is Saturday
        return c.done(FieldAst(DOW, c.s, items=(Item("one", 7, 7, 0, "L", True),)))
    day, named = c.value()
    if c.eat("L"):
        return c.done(FieldAst(DOW, c.s, special="xL", number=day, digit_day=not named))
    if c.eat("#"):
        nth = c.bounded("occurrence", 1, 5)
        ast = FieldAst(DOW, c.s, special="x#n", number=day, nth=nth, digit_day=not named)
        return c.done(ast)
    c.i = 0
    return c.items([c.item(allow_star=False)])


_PARSERS = {MINUTE: _generic, HOUR: _generic, DOM: _dom, MONTH: _generic, DOW: _dow}


def parse_field(f: Field, text: str) -> FieldAst:
    """Parse one field exactly as Cloudflare does; raise CronError naming the field."""
    try:
        return _PARSERS[f](_Cursor(f, text))
    except _Unexpected as exc:
        raise _diagnose(f, text, exc.pos) from None


_SYNTAX = "values, ranges a-b, steps */n or a-b/n, and comma lists of them"
_EXPECTED = {
    MINUTE: f"use numbers 0-59 in {_SYNTAX}",
    HOUR: f"use numbers 0-23 in {_SYNTAX}",
    DOM: f"use days 1-31 in {_SYNTAX}, or one of L, LW, L-n, nW",
    MONTH: f"use 1-12 or JAN-DEC in {_SYNTAX}",
    DOW: f"use SUN-SAT in {_SYNTAX}, or one of FRIL, MON#2",
}


_SPECIAL = {
    DOM: re.compile(r"L.*|[0-9]+W"),
    DOW: re.compile(r"L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#.*)", re.IGNORECASE),
}


def _diagnose(f: Field, text: str, pos: int) -> CronError:
    """Turn a syntax failure into a message that says what is wrong and how to fix it."""
    if "?" in text:
        return CronError(f"{f.name} '?' is not supported by Cloudflare", hint="use *")
    if f in (DOM, DOW) and re.search("[lw]" if f is DOM else "l", text):
        fixed = text.upper()
        try:
            _PARSERS[f](_Cursor(f, fixed))
        except (_Unexpected, CronError):
            pass
        else:
            letters = sorted({ch.upper() for ch in text if ch in ("lw" if f is DOM else "l")})
            what = " and ".join(letters)
            return CronError(
                f"{f.name} '{text}': Cloudflare accepts {what} only in upper case "
                "(names in any case)",
                hint=f"write {fixed}",
            )
    if f in _SPECIAL and (
        (0 < pos < len(text) and text[pos] in "LW#")
        or ("," in text and any(_SPECIAL[f].fullmatch(it) for it in text.split(",")))
    ):
        return CronError(
            f"{f.name} '{text}' combines an L, W or # item with other items, "
            "which Cloudflare rejects",
            hint="an L, W or # item must be the whole field (use another cron trigger)",
        )
    start, end = pos, pos
    while start > 0 and text[start - 1].isalpha():
        start -= 1
    while end < len(text) and text[end].isalpha():
        end += 1
    word = text[start:end]
    if word and f.names:
        kind = "month" if f is MONTH else "weekday"
        hint = f"use three-letter names {f.names[0]}-{f.names[-1]}"
        return CronError(f"{f.name} '{word}' is not a {kind} name", hint=hint)
    if word and f in (MINUTE, HOUR):
        return CronError(f"{f.name} '{word}' is not a number", hint=f"use {f.lo}-{f.hi}")
    return CronError(f"{f.name} '{text}' is not valid", hint=_EXPECTED[f])
