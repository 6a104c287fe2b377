"""Slots: the minutes a job's cron fires at, as UTC datetimes.

Only ``matches`` and ``next_after`` of the cron dialect are needed; the latest slot at or
before a time is found by searching back over doubling spans.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from engine.core.errors import ConfigError
from engine.core.model import Job
from engine.core.times import floor_minute, iso
from engine.schedule import cron, zones


class Schedule(Protocol):
    """What :func:`engine.schedule.cron.parse` returns, as far as the runtime needs it."""

    def matches(self, t: datetime) -> bool: ...

    def next_after(self, t: datetime) -> datetime | None: ...


ScheduleFor = Callable[[Job], Schedule]
#: What decides a job's slots: jobs with one key share one schedule.
ScheduleKey = tuple[str, str | None, object, bool]

#: A range of every-minute slots over a year is half a million: refuse beyond this.
MAX_SLOTS = 1_000_000

# A cron that fires at all fires within this (29 February on a given weekday: 28 years).
_MAX_LOOKBACK = timedelta(days=366 * 29)


# Where the schedule's period is measured from, so the answer is the same on every run.
_PERIOD_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def longest_gap(schedule: Schedule, *, slots: int = 1000) -> timedelta | None:
    """The longest time between two consecutive slots, over the first ``slots`` slots
    from 2026 (enough for every cron's cycle but the rarest; None if it never fires)."""
    longest = None
    t = schedule.next_after(_PERIOD_FROM)
    for _ in range(slots):
        if t is None:
            break
        nxt = schedule.next_after(t)
        if nxt is None or nxt - t > _MAX_LOOKBACK:
            break
        longest = max(longest or nxt - t, nxt - t)
        t = nxt
    return longest


def schedule_key(job: Job) -> ScheduleKey:
    """Jobs with equal keys fire at the same instants."""
    return (job.cron, job.timezone, job.dst, job.allow_both_day_fields)


def between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's slots in ``[start, end)``, oldest first; ConfigError past MAX_SLOTS.
    The one way every path lists a job's slots in a range."""
    out: list[datetime] = []
    t = schedule.next_after(floor_minute(start) - timedelta(minutes=1))
    while t is not None and t < start:
        t = schedule.next_after(t)
    while t is not None and t < end:
        if len(out) == MAX_SLOTS:
            raise ConfigError(
                f"more than {MAX_SLOTS} slots between {iso(start)} and {iso(end)}",
                hint="narrow the range (or the job's catch_up.within_seconds)",
            )
        out.append(t)
        t = schedule.next_after(t)
    return out


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
