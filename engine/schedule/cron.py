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
"""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.core.errors import CronError
from engine.schedule.cronfields import (
    DOM,
    DOW,
    FIELDS,
    MONTH,
    WEEKDAYS,
    FieldAst,
    Item,
    day_test,
    field_values,
    parse_field,
    render,
)

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

    @property
    def fires(self) -> bool:
        """Does it ever fire? The calendar has every (month length, first weekday) pair."""
        return any(self.days[d - 28][w] for m in self.months for d in _DIMS[m] for w in range(7))

    def _month_days(self, year: int, month: int) -> tuple[int, ...]:
        first, dim = calendar.monthrange(year, month)
        return self.days[dim - 28][(first + 1) % 7]

    def matches(self, dt: datetime) -> bool:
        """Does it fire in dt's minute? Naive datetimes are taken as UTC."""
        t = _utc(dt)
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
            t = _utc(dt).replace(second=0, microsecond=0) + timedelta(minutes=1)
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


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_cloudflare(text: str) -> Cron:
    """Exactly Cloudflare's grammar and meaning, without our policy."""
    return _build(text, _parse_fields(text))


def parse(text: str, *, allow_both_day_fields: bool = False) -> Cron:
    """Cloudflare's grammar plus our policy. Raises CronError with a hint."""
    asts = _parse_fields(text)
    _check_policy(asts, allow_both_day_fields)
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
    ok = day_test(dom, dow)
    days = tuple(
        tuple(tuple(d for d in range(1, dim + 1) if ok(d, dim, (w + d - 1) % 7)) for w in range(7))
        for dim in range(28, 32)
    )
    minutes, hours, months = (field_values(a) for a in (minute, hour, month))
    day_texts = [_dom_text(dom), _dow_text(dow)]
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


def _full_pattern(ast: FieldAst) -> bool:
    f = ast.field
    return not ast.star and not ast.special and len(field_values(ast)) == f.hi - f.lo + 1


def _dom_text(ast: FieldAst) -> str:
    if ast.star:
        return "*"
    n = ast.number
    special = {"L": "L", "LW": "LW", "L-n": f"L-{n}", "L-nW": f"L-{n}W", "nW": f"{n}W"}
    return special.get(ast.special) or render(DOM, field_values(ast), steps=True, names=False)


def _dow_text(ast: FieldAst) -> str:
    if ast.star:
        return "*"
    day = WEEKDAYS[ast.number - 1] if ast.special else ""
    if ast.special == "xL":
        return f"{day}L"
    if ast.special == "x#n":
        return f"{day}#{ast.nth}"
    return render(DOW, field_values(ast), steps=False, names=True, full="SUN-SAT")


# --- policy ----------------------------------------------------------------------


def _check_policy(asts: tuple[FieldAst, ...], allow_both_day_fields: bool) -> None:
    dom, dow = asts[2], asts[4]
    _check_numeric_weekdays(dow)
    if dom.special == "L-nW":
        raise CronError(
            f"day-of-month '{dom.text}' is ambiguous on Cloudflare: its matcher and its "
            "scheduler disagree when that day is a Saturday",
            hint=f"write L-{dom.number}, LW or explicit days",
        )
    for ast in asts:
        _check_wraps(ast)
    if not dom.star and not dow.star and not allow_both_day_fields:
        raise CronError(
            f"day-of-month '{dom.text}' and day-of-week '{dow.text}' are both restricted, "
            "so Cloudflare fires on days matching EITHER field, not both",
            hint="opt in with allow_both_day_fields: true, or drop one field (make it *)",
        )


def _check_numeric_weekdays(dow: FieldAst) -> None:
    if dow.special:
        if not dow.digit_day:
            return
        suffix = "L" if dow.special == "xL" else f"#{dow.nth}"
        cf = WEEKDAYS[dow.number - 1] + suffix
        classic = WEEKDAYS[dow.number % 7] + suffix
    else:
        if not any(_numeric_item(it) for it in dow.items):
            return
        cf = _dow_text(dow)
        days = set().union(*(_classic_weekdays(it) for it in dow.items))
        classic = render(
            DOW, frozenset(d + 1 for d in days), steps=False, names=True, full="SUN-SAT"
        )
    if cf == classic:
        raise CronError(
            f"weekday '{dow.text}' uses numbers, which classic cron counts from 0 = SUN "
            "and Cloudflare from 1 = SUN",
            hint=f"write {cf}",
        )
    raise CronError(
        f"weekday '{dow.text}' is ambiguous: {cf} on Cloudflare, {classic} in classic cron",
        hint=f"write {cf} or {classic}",
    )


def _numeric_item(it: Item) -> bool:
    return (not it.star and not it.start_named) or (it.explicit_end and not it.end_named)


def _classic_weekdays(it: Item) -> set[int]:
    """The weekdays (0 = SUN) classic cron reads: digits 0-7 with 0 and 7 = SUN."""
    a = 0 if it.star else it.start - 1 if it.start_named else it.start
    b = (it.end - 1 if it.end_named else it.end) if it.explicit_end else 6
    if it.kind == "one":
        return {a % 7}
    seq = [*range(a, b + 1)] if a <= b else [*range(a, 7), *range(0, b + 1)]
    return {x % 7 for x in seq[:: it.step or 1]}


def _check_wraps(ast: FieldAst) -> None:
    f = ast.field
    for it in ast.items:
        if not (it.explicit_end and it.start > it.end):
            continue
        names = f.names if it.start_named or it.end_named else ()

        def spell(v: int, names: tuple[str, ...] = names) -> str:
            return names[v - f.lo] if names else str(v)

        def span(a: int, b: int) -> str:
            return spell(a) if a == b else f"{spell(a)}-{spell(b)}"

        if it.kind == "range":
            split = f"{span(it.start, f.hi)},{span(f.lo, it.end)}"
        else:
            seq = [*range(it.start, f.hi + 1), *range(f.lo, it.end + 1)][:: it.step]
            split = render(f, frozenset(seq), steps=f is not DOW, names=bool(names))
        fixed = ",".join(split if other is it else other.text for other in ast.items)
        raise CronError(
            f"{f.name} range '{it.text}' wraps around, which Cloudflare mis-evaluates",
            hint=f"write {fixed}",
        )
