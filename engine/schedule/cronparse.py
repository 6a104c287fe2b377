"""Cloudflare's cron grammar, one field at a time: a port of the parser in ``saffron``
(the Rust crate behind Cron Triggers) that keeps how each item was written, and the
diagnosis of what is wrong when a field does not parse.
Ported from saffron, Copyright (c) 2020 Cloudflare, Inc., BSD-3-Clause: see
THIRD_PARTY_NOTICES.md at the root of the project (shipped in the wheel's licence files).
"""

from __future__ import annotations

import re
from typing import NoReturn

from engine.core.errors import CronError
from engine.schedule.cronfields import DOM, DOW, HOUR, MINUTE, MONTH, Field, FieldAst, Item

_DIGITS = re.compile(r"[0-9]+")  # nom's digit1 is ASCII only; \d would accept other scripts


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
