"""Slots: the minutes a job's cron fires at, as UTC datetimes.

Only ``matches`` and ``next_after`` of the cron dialect are needed; the latest slot at or
before a time is found by searching back over doubling spans.
"""

from __future__ import annotations

import calendar
import functools
import itertools
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Protocol

from engine.core.errors import ConfigError
from engine.core.model import Dst, Job
from engine.core.times import floor_minute, iso
from engine.schedule import cron, zones


class Schedule(Protocol):
    """What :func:`engine.schedule.cron.parse` returns, as far as the runtime needs it."""

    def matches(self, t: datetime) -> bool: ...

    def next_after(self, t: datetime) -> datetime | None: ...


ScheduleFor = Callable[[Job], Schedule]

#: A range of every-minute slots over a year is half a million: refuse beyond this.
MAX_SLOTS = 1_000_000

# A cron that fires at all fires within this (29 February on a given weekday: 28 years).
_MAX_LOOKBACK = timedelta(days=366 * 29)


@functools.lru_cache(maxsize=4096)
def longest_gap(c: cron.Cron) -> timedelta | None:
    """The longest time between two consecutive slots of ``c`` (read in UTC) over the
    whole Gregorian cycle of 400 years, after which the calendar repeats; None if it
    never fires. Computed from the parsed fields, not by walking the slots: a day's fire
    times are the same on every day it fires, so the longest gap is either inside a day
    or from the last time of one firing day to the first of the next."""
    if not c.fires:
        return None
    times = [h * 60 + m for h in c.hours for m in c.minutes]  # sorted: both fields are
    inside = _inside(times)
    across = _longest_day_gap(c.months, c.days) * _DAY_MINUTES - (times[-1] - times[0])
    return timedelta(minutes=max(inside, across))


_DAY_MINUTES = 1440
_CYCLE_START, _CYCLE_YEARS = 2000, 400
_CYCLE_DAYS = 146_097  # days in 400 Gregorian years, a whole number of weeks


@functools.cache
def _cycle() -> tuple[tuple[int, int, int, int], ...]:
    """Every month of one 400-year cycle: (month, days in it, weekday of its 1st with
    0 = SUN as ``Cron.days`` indexes it, ordinal of the day before its 1st)."""
    out = []
    before = date(_CYCLE_START, 1, 1).toordinal() - 1
    for year in range(_CYCLE_START, _CYCLE_START + _CYCLE_YEARS):
        february = 29 if calendar.isleap(year) else 28
        for month, dim in enumerate((31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), 1):
            # ordinal 1 (1 January of year 1) was a Monday, so ordinal % 7 is 0 on a Sunday
            out.append((month, dim, (before + 1) % 7, before))
            before += dim
    return tuple(out)


def _inside(values: Sequence[int]) -> int:
    """The largest step between consecutive sorted values (0 for fewer than two)."""
    return max((b - a for a, b in itertools.pairwise(values)), default=0)


@functools.lru_cache(maxsize=256)
def _longest_day_gap(months: frozenset[int], days: tuple[tuple[tuple[int, ...], ...], ...]) -> int:
    """The most days from one firing day to the next, over the cycle and across its end
    (shared by every cron with these months and day fields, whatever its times)."""
    if len(months) == 12 and all(len(f) == 28 + i for i, w in enumerate(days) for f in w):
        return 1  # every day
    # Each (days in the month, weekday of its 1st) fires on the same days every time.
    shapes = [[(fire[0], fire[-1]) if fire else None for fire in by_weekday] for by_weekday in days]
    longest = first = last = 0
    used = set()
    for month, dim, weekday, base in _cycle():
        shape = shapes[dim - 28][weekday] if month in months else None
        if shape is None:
            continue
        used.add((dim, weekday))
        if last:
            longest = max(longest, base + shape[0] - last)
        else:
            first = base + shape[0]
        last = base + shape[1]
    inside = max(_inside(days[dim - 28][weekday]) for dim, weekday in used)
    return max(longest, inside, first + _CYCLE_DAYS - last)


#: What decides when a job fires: its cron, its day-field rule, its zone and DST rules
#: (what cron_schedule reads). Jobs that share one share everything computed from it.
ScheduleKey = tuple[str, bool, str | None, Dst]


def schedule_key(job: Job) -> ScheduleKey:
    """Jobs with equal keys fire at the same instants."""
    return (job.cron, job.allow_both_day_fields, job.timezone, job.dst)


def between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's slots in ``[start, end)``, oldest first; ConfigError past MAX_SLOTS.
    The one way every path lists a job's slots in a range."""
    t = schedule.next_after(floor_minute(start) - timedelta(minutes=1))
    while t is not None and t < start:
        t = schedule.next_after(t)
    return slots_from(schedule, t, end, start=start)[0]


def slots_from(
    schedule: Schedule, first: datetime | None, end: datetime, *, start: datetime | None = None
) -> tuple[list[datetime], datetime | None]:
    """The schedule's slots from ``first`` (one of its slots, or None: none) up to ``end``
    excluded, and its first slot at or after ``end`` (None: it fires no more): what
    :func:`between` lists from its first slot, for a caller that knows that slot already
    and wants the next one too (the scheduling core's cohorts). ``start``: the range's
    start, for the error (default ``first``)."""
    out: list[datetime] = []
    t = first
    while t is not None and t < end:
        if len(out) == MAX_SLOTS:
            raise ConfigError(
                f"more than {MAX_SLOTS} slots between {iso(start or out[0])} and {iso(end)}",
                hint="narrow the range (or the job's catch_up.within_seconds)",
            )
        out.append(t)
        t = schedule.next_after(t)
    return out, t


def cron_schedule(job: Job) -> Schedule:
    """The job's schedule in Cloudflare's dialect, read in its time zone (UTC by default)."""
    parsed = cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)
    if job.timezone is not None:
        return zones.ZonedSchedule(parsed, job.timezone, job.dst)
    schedule: Schedule = parsed
    return schedule


def latest_at_or_before(schedule: Schedule, t: datetime) -> datetime | None:
    """The last slot at or before ``t``; None if the cron never fired in the lookback."""
    t = floor_minute(t)
    if schedule.matches(t):
        return t
    span = timedelta(hours=1)
    while span <= _MAX_LOOKBACK:
        found = schedule.next_after(t - span)
        if found is not None and found <= t:
            while (later := schedule.next_after(found)) is not None and later <= t:
                found = later
            return found
        span *= 2
    return None


def settles(job: Job) -> bool:
    """Whether the job settles each day: its template reads ``settle_seconds`` (it keeps
    a day so far and re-aggregates it in full once the day is settled)."""
    return "settle_seconds" in job.reads


def day_settled_by(schedule: Schedule, slot: datetime, settle_seconds: int) -> date | None:
    """The day D this slot settles: it is the first slot at or after D+1 00:00 +
    ``settle_seconds``. None when an earlier slot already passed that point."""
    settle = timedelta(seconds=settle_seconds)
    next_day = (slot - settle).date()  # D+1: the latest day whose start + settle <= slot
    threshold = datetime.combine(next_day, time(), slot.tzinfo) + settle
    previous = latest_at_or_before(schedule, slot - timedelta(minutes=1))
    if previous is not None and previous >= threshold:
        return None
    return next_day - timedelta(days=1)
