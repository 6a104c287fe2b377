"""Slots: the minutes a job's cron fires at, as UTC datetimes.

Only ``matches`` and ``next_after`` of the cron dialect are needed; the latest slot at or
before a time is found by searching back over doubling spans.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from engine.core.model import Job
from engine.core.times import floor_minute
from engine.schedule import cron, zones


class Schedule(Protocol):
    """What :func:`engine.schedule.cron.parse` returns, as far as the runtime needs it."""

    def matches(self, t: datetime) -> bool: ...

    def next_after(self, t: datetime) -> datetime | None: ...


ScheduleFor = Callable[[Job], Schedule]

# A cron that fires at all fires within this (29 February on a given weekday: 28 years).
_MAX_LOOKBACK = timedelta(days=366 * 29)


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
