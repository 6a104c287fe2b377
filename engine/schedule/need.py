"""A job's *need*: the smallest cron-shaped set of UTC minutes (minutes x hours x days x
months) that holds every instant it can fire at. A UTC job's need is its own cron; a zoned
job's need adds every offset its zone uses (and the instants a DST gap shifts runs to),
moving day fields by the day the offset crosses. Invocations per day are averaged over the
reference year 2027 (``REFERENCE_YEAR``)."""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, date, timedelta

from engine.core.model import Gap, Job
from engine.schedule import cron, zones
from engine.schedule.cronfields import (
    DOM,
    DOW,
    HOUR,
    MINUTE,
    MONTH,
    Field,
    field_values,
    render,
)
from engine.schedule.cronparse import parse_field
from engine.schedule.slots import ScheduleKey, schedule_key

__all__ = [
    "DAYS",
    "DAY_MINUTES",
    "REFERENCE_YEAR",
    "Need",
    "fires_on",
    "firing_days",
    "job_cron",
    "need_of",
    "schedule_need",
]

REFERENCE_YEAR = 2027
DAYS = [date(REFERENCE_YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
DAY_MINUTES = 1440
_ALL_MONTHS = frozenset(range(1, 13))


#: A Need's fields, in order.
_Fields = tuple[
    frozenset[int], frozenset[int], frozenset[int], str, frozenset[int], tuple[str, str]
]


@dataclass(frozen=True)
class Need:
    """A cron-shaped set of UTC minutes. ``day_kind`` is ``any``, ``dom`` / ``dow`` (a
    plain value set in ``day_values``; weekdays 1 = SUN) or ``text`` (the day fields as
    written in ``day_text``, for L, W, # and both-field crons)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    day_kind: str = "any"
    day_values: frozenset[int] = frozenset()
    day_text: tuple[str, str] = ("*", "*")

    @functools.cached_property
    def text(self) -> str:
        """The canonical Cloudflare cron of this need."""
        if self.day_kind == "dom":
            dom, dow = render(DOM, self.day_values, steps=True, names=False), "*"
        elif self.day_kind == "dow":
            dom, dow = "*", render(DOW, self.day_values, steps=False, names=True, full="*")
        else:
            dom, dow = self.day_text
        fields = [
            render(MINUTE, self.minutes, steps=True, names=False),
            render(HOUR, self.hours, steps=True, names=False),
            dom,
            render(MONTH, self.months, steps=True, names=False),
            dow,
        ]
        return cron.parse_cloudflare(" ".join(fields)).canonical

    def merge(self, other: Need) -> Need:
        return Need(*self._merged(other))

    def merged_per_day(self, other: Need) -> float:
        """``self.merge(other).per_day``, without making the Need when it can (folding
        asks this of every pair of triggers)."""
        minutes, hours, months, kind, values, text = self._merged(other)
        if kind == "text":
            return Need(minutes, hours, months, kind, values, text).per_day
        return len(minutes) * len(hours) * _days(months, kind, values) / len(DAYS)

    def _merged(self, other: Need) -> _Fields:
        """The fields of the union: day values merge when both have the same plain kind,
        text day fields when equal, else any day (which a full value set also is)."""
        kind, values, text = "any", frozenset[int](), ("*", "*")
        if self.day_kind == other.day_kind and self.day_kind in ("dom", "dow"):
            kind, values = self.day_kind, self.day_values | other.day_values
            if len(values) == (31 if kind == "dom" else 7):
                kind, values = "any", frozenset()
        elif self.day_kind == other.day_kind == "text" and self.day_text == other.day_text:
            kind, text = "text", self.day_text
        return (
            self.minutes | other.minutes, self.hours | other.hours, self.months | other.months,
            kind, values, text,
        )  # fmt: skip

    @functools.cached_property
    def days(self) -> int:
        """On how many days of the reference year it fires."""
        if self.day_kind == "text":
            return sum(firing_days(cron.parse_cloudflare(self.text))[1:-1])
        return _days(self.months, self.day_kind, self.day_values)

    @property
    def per_day(self) -> float:
        """Invocations per day, averaged over the reference year."""
        return len(self.minutes) * len(self.hours) * self.days / len(DAYS)


def _need(
    minutes: frozenset[int],
    hours: frozenset[int],
    months: frozenset[int],
    kind: str,
    values: frozenset[int] = frozenset(),
    text: tuple[str, str] = ("*", "*"),
) -> Need:
    full = {"dom": 31, "dow": 7}
    if kind in full and len(values) == full[kind]:
        kind, values = "any", frozenset()
    return Need(minutes, hours, months, kind, values, text)


@functools.lru_cache(maxsize=8192)
def _days(months: frozenset[int], kind: str, values: frozenset[int]) -> int:
    """Days of the reference year in ``months`` (on those month days or weekdays);
    folding asks for the same few combinations tens of thousands of times."""
    counts = _counts()
    if kind == "any":
        return sum(counts.month[m] for m in months)
    table = counts.dom if kind == "dom" else counts.dow
    return sum(table[m].get(v, 0) for m in months for v in values)


@dataclass(frozen=True)
class _Counts:
    month: dict[int, int]
    dom: dict[int, dict[int, int]]
    dow: dict[int, dict[int, int]]


@functools.cache
def _counts() -> _Counts:
    c = _Counts(
        {m: 0 for m in _ALL_MONTHS}, {m: {} for m in _ALL_MONTHS}, {m: {} for m in _ALL_MONTHS}
    )
    for d in DAYS:
        c.month[d.month] += 1
        c.dom[d.month][d.day] = c.dom[d.month].get(d.day, 0) + 1
        w = (d.weekday() + 1) % 7 + 1  # 1 = SUN
        c.dow[d.month][w] = c.dow[d.month].get(w, 0) + 1
    return c


def fires_on(c: cron.Cron, d: date) -> bool:
    if d.month not in c.months:
        return False
    dim, weekday = _month_shape(d.year, d.month)
    return d.day in c.days[dim - 28][weekday]


@functools.cache
def _month_shape(year: int, month: int) -> tuple[int, int]:
    """(days in the month, weekday of its 1st with 0 = SUN), as ``Cron.days`` indexes."""
    first, dim = calendar.monthrange(year, month)
    return dim, (first + 1) % 7


#: The reference year with a day on either side (a zoned job's day can move by one).
_SPAN = (DAYS[0] - timedelta(days=1), *DAYS, DAYS[-1] + timedelta(days=1))


@functools.lru_cache(maxsize=4096)
def firing_days(c: cron.Cron) -> tuple[bool, ...]:
    """Whether ``c`` fires on each day of the reference year, with the day before it
    first and the day after it last (one computation per distinct cron)."""
    return tuple(fires_on(c, d) for d in _SPAN)


def _utc_need(c: cron.Cron) -> Need:
    f = c.canonical.split(" ")
    dom, dow = f[2], f[4]
    minutes, hours = frozenset(c.minutes), frozenset(c.hours)
    if dom == "*" and dow == "*":
        return _need(minutes, hours, c.months, "any")
    if dow == "*" and not any(ch in dom for ch in "LW"):
        return _need(minutes, hours, c.months, "dom", _values(DOM, dom))
    if dom == "*" and not any(ch in dow for ch in "L#"):
        return _need(minutes, hours, c.months, "dow", _values(DOW, dow))
    return _need(minutes, hours, c.months, "text", text=(dom, dow))


def _values(f: Field, text: str) -> frozenset[int]:
    return field_values(parse_field(f, text))


def job_cron(job: Job) -> cron.Cron:
    return cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)


def need_of(job: Job) -> Need:
    """The UTC minutes a job can fire at, as a cron-shaped set."""
    return schedule_need(schedule_key(job))


@functools.lru_cache(maxsize=4096)
def schedule_need(key: ScheduleKey) -> Need:
    """The need of every job with this schedule."""
    text, both, name, dst = key
    c = cron.parse(text, allow_both_day_fields=both)
    local = _utc_need(c)
    if name is None:
        return local
    wall_minutes = {h * 60 + m for h in c.hours for m in c.minutes}
    used = zones.offsets(name)
    pairs = {(lm, o) for lm in wall_minutes for o in used}
    crosses_midnight = False
    if dst.gap is Gap.SHIFT:
        for tr in zones.transitions(name, *zones.HORIZON):
            if tr.after <= tr.before:
                continue
            at = tr.at.astimezone(UTC)
            start = (at.hour * 60 + at.minute + tr.before) % DAY_MINUTES  # first lost minute
            lost = range(start, start + tr.after - tr.before)
            if any(lm % DAY_MINUTES in wall_minutes for lm in lost):
                end = start + tr.after - tr.before
                crosses_midnight |= end >= DAY_MINUTES
                pairs.add((end % DAY_MINUTES, tr.after))
    xs = {lm - o for lm, o in pairs}
    shifts = {x // DAY_MINUTES for x in xs}
    utc = {x % DAY_MINUTES for x in xs}
    minutes = frozenset(u % 60 for u in utc)
    hours = frozenset(u // 60 for u in utc)
    if shifts == {0} and not crosses_midnight:
        return _need(minutes, hours, local.months, local.day_kind, local.day_values, local.day_text)
    months = local.months
    if months != _ALL_MONTHS:
        months = frozenset((m - 1 + s) % 12 + 1 for m in months for s in shifts | {0})
    if local.day_kind == "dow" and not crosses_midnight:
        moved = frozenset((v - 1 + s) % 7 + 1 for v in local.day_values for s in shifts)
        return _need(minutes, hours, months, "dow", moved)
    return _need(minutes, hours, months, "any")
