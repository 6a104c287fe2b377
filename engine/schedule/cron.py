"""Cloudflare's cron dialect: parse, canonicalise and evaluate, in UTC.

``parse_cloudflare`` accepts exactly what Cloudflare accepts (saffron's grammar) and
matches exactly what saffron's matcher matches, quirks included: the weekday field runs
1-7 from SUN, a wrapping range also matches the value before its start, and when both
day fields are restricted a day matches if EITHER does. ``parse`` adds our policy on top:
no numeric weekdays, no wrapping ranges, no ``L-nW``, both day fields only on request,
and no expression that never fires.

The canonical form expands each field to its values and re-emits them sorted and
compact: ``*`` for a full field, ``*/k`` for a step from the start, else runs (``1-5,9``).
Months are numbers, weekdays are names (SUN-SAT). A day field that covers every day
makes both day fields ``*`` (that is what the OR rule makes of it).

Ported from saffron, Copyright (c) 2020 Cloudflare, Inc., BSD-3-Clause: see
THIRD_PARTY_NOTICES.md at the root of the project (shipped in the wheel's licence files).
"""

from __future__ import annotations

import bisect
import calendar
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.core.errors import CronError
from engine.core.times import as_utc
from engine.schedule.cronfields import (
    FIELDS,
    MONTH,
    FieldAst,
    day_test,
    dom_text,
    dow_text,
    field_values,
    render,
)
from engine.schedule.cronparse import parse_field
from engine.schedule.cronpolicy import check_policy

__all__ = ["Cron", "parse", "parse_cloudflare"]

_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *"}
_MACROS |= {"@weekly": "0 0 * * SUN", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *"}
_MACROS |= {"@annually": "0 0 1 1 *"}
_DIMS = {m: (28, 29) if m == 2 else (30,) if m in (4, 6, 9, 11) else (31,) for m in range(1, 13)}


@dataclass(frozen=True, eq=False)
class Cron:
    """A parsed expression. Equal (and hashed) by its canonical form."""

    text: str
    canonical: str
    minutes: tuple[int, ...] = field(repr=False)
    hours: tuple[int, ...] = field(repr=False)
    months: frozenset[int] = field(repr=False)
    # days[dim - 28][weekday of the 1st]: the matching days of such a month
    days: tuple[tuple[tuple[int, ...], ...], ...] = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    @functools.cached_property
    def fires(self) -> bool:
        """Does it ever fire? The calendar has every (month length, first weekday) pair."""
        return any(self.days[d - 28][w] for m in self.months for d in _DIMS[m] for w in range(7))

    def _month_days(self, year: int, month: int) -> tuple[int, ...]:
        first, dim = calendar.monthrange(year, month)
        return self.days[dim - 28][(first + 1) % 7]

    def matches(self, dt: datetime) -> bool:
        """Does it fire in dt's minute? Naive datetimes are taken as UTC."""
        t = as_utc(dt)
        return (
            t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and t.day in self._month_days(t.year, t.month)
        )

    def next_after(self, dt: datetime) -> datetime | None:
        """The first fire time strictly after dt (aware UTC), or None if it never fires."""
        if not self.fires:
            return None
        try:
            t = as_utc(dt).replace(second=0, microsecond=0) + timedelta(minutes=1)
        except OverflowError:  # past 9999-12-31 23:59, datetime's last minute
            return None
        year, month, day, hm = t.year, t.month, t.day, (t.hour, t.minute)
        while year <= 9999:
            if month in self.months:
                for d in self._month_days(year, month):
                    found = self._time_at_or_after(hm if d == day else (0, 0)) if d >= day else None
                    if found is not None:
                        return datetime(year, month, d, *found, tzinfo=UTC)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            day, hm = 1, (0, 0)
        return None

    def _time_at_or_after(self, hm: tuple[int, int]) -> tuple[int, int] | None:
        for h in self.hours[bisect.bisect_left(self.hours, hm[0]) :]:
            i = bisect.bisect_left(self.minutes, hm[1]) if h == hm[0] else 0
            if i < len(self.minutes):
                return h, self.minutes[i]
        return None

    def iter_after(self, dt: datetime) -> Iterator[datetime]:
        t = self.next_after(dt)
        while t is not None:
            yield t
            t = self.next_after(t)

    def fire_times(self, after: datetime, n: int) -> list[datetime]:
        out: list[datetime] = []
        for t in self.iter_after(after):
            if len(out) == n:
                break
            out.append(t)
        return out


# A thousand jobs share a few hundred crons, and each is read by validation, the model,
# folding and the generator: parse each text once (a Cron is immutable; errors are not
# cached, so a bad text raises every time).
_CACHE = 4096


@functools.lru_cache(maxsize=_CACHE)
def parse_cloudflare(text: str) -> Cron:
    """Exactly Cloudflare's grammar and meaning, without our policy."""
    return _build(text, _parse_fields(text))


def parse(text: str, *, allow_both_day_fields: bool = False) -> Cron:
    """Cloudflare's grammar plus our policy. Raises CronError with a hint."""
    return _parse(text, allow_both_day_fields)


@functools.lru_cache(maxsize=_CACHE)
def _parse(text: str, allow_both_day_fields: bool) -> Cron:
    asts = _parse_fields(text)
    check_policy(asts, allow_both_day_fields=allow_both_day_fields)
    cron = _build(text, asts)
    if not cron.fires:
        dom, month = asts[2], asts[3]
        most = max(max(_DIMS[m]) for m in cron.months)
        raise CronError(
            f"day-of-month '{dom.text}' never occurs in month '{month.text}', "
            "so the cron never fires",
            hint=f"pick a day those months have (at most {most}), or L for the last day",
        )
    return cron


def _parse_fields(text: str) -> tuple[FieldAst, ...]:
    if text != text.strip():
        raise CronError("cron expression has leading or trailing blanks", hint="remove them")
    if text.startswith("@") and not re.search(r"\s", text):
        example = _MACROS.get(text.lower(), "0 0 * * *")
        raise CronError(
            f"macro '{text}' is not supported by Cloudflare",
            hint=f"write 5 fields, e.g. '{example}'",
        )
    parts = re.split(r"[ \t]+", text) if text else []
    if len(parts) != 5:
        names = " ".join(f.name for f in FIELDS)
        hint = "Cloudflare has no seconds or year field" if len(parts) > 5 else f"write {names}"
        raise CronError(f"cron expression has {len(parts)} fields, expected 5", hint=hint)
    return tuple(parse_field(f, part) for f, part in zip(FIELDS, parts, strict=True))


def _build(text: str, asts: tuple[FieldAst, ...]) -> Cron:
    minute, hour, dom, month, dow = asts
    days = _days(dom, dow)
    minutes, hours, months = (field_values(a) for a in (minute, hour, month))
    day_texts = [dom_text(dom), dow_text(dow)]
    if _full_pattern(dom) or _full_pattern(dow):
        day_texts = ["*", "*"]  # one day field matching every day makes the OR match every day
    canonical = " ".join(
        [
            render(minute.field, minutes, steps=True, names=False),
            render(hour.field, hours, steps=True, names=False),
            day_texts[0],
            render(MONTH, months, steps=True, names=False),
            day_texts[1],
        ]
    )
    return Cron(text, canonical, tuple(sorted(minutes)), tuple(sorted(hours)), months, days)


@functools.lru_cache(maxsize=_CACHE)
def _days(dom: FieldAst, dow: FieldAst) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """The matching days for every month length and weekday of the 1st (most crons share
    their day fields: ``* *``)."""
    ok = day_test(dom, dow)
    return tuple(
        tuple(tuple(d for d in range(1, dim + 1) if ok(d, dim, (w + d - 1) % 7)) for w in range(7))
        for dim in range(28, 32)
    )


def _full_pattern(ast: FieldAst) -> bool:
    f = ast.field
    return not ast.star and not ast.special and len(field_values(ast)) == f.hi - f.lo + 1
