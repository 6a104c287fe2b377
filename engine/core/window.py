"""A job's window: the calendar period its run covers, a function of the slot only."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

DEFAULT_SETTLE_SECONDS = 3600  # late events of day D are counted by the run this long after D ends


class Period(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"  # ISO weeks: Monday 00:00 UTC
    MONTH = "month"


def _floor(t: datetime, period: Period) -> datetime:
    t = t.replace(second=0, microsecond=0)
    if period is Period.MINUTE:
        return t
    if period is Period.HOUR:
        return t.replace(minute=0)
    if period is Period.DAY:
        return t.replace(minute=0, hour=0)
    if period is Period.WEEK:
        return t.replace(minute=0, hour=0) - timedelta(days=t.weekday())
    return t.replace(minute=0, hour=0, day=1)


def _shift(t: datetime, period: Period, n: int) -> datetime:
    if period is Period.MINUTE:
        return t + timedelta(minutes=n)
    if period is Period.HOUR:
        return t + timedelta(hours=n)
    if period is Period.DAY:
        return t + timedelta(days=n)
    if period is Period.WEEK:
        return t + timedelta(weeks=n)
    months = t.year * 12 + (t.month - 1) + n
    year, month = divmod(months, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    return t.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True, kw_only=True)
class Window:
    """The data a run covers: the calendar ``period`` containing the slot, moved by
    ``offset`` periods. ``hour, -1`` at 10:00 is [09:00, 10:00); ``minute, -1`` at 10:00
    is [09:59, 10:00); ``week, -1`` is the
    previous ISO week (from Monday 00:00); ``month, -1`` on 1 March is February. A
    function of the slot only, never of the clock."""

    period: Period
    offset: int = 0
    timezone: str | None = None  # the job's zone: periods are local hours, days, months
    #: Day D is settled (re-aggregated in full) by the first run at or after
    #: D+1 00:00 + settle_seconds; templates that keep a day so far read it.
    settle_seconds: int = DEFAULT_SETTLE_SECONDS

    def bounds(self, slot: datetime) -> tuple[datetime, datetime]:
        if self.timezone is None or self.period is Period.MINUTE:  # a minute is one everywhere
            start = _shift(_floor(slot, self.period), self.period, self.offset)
            return start, _shift(start, self.period, 1)
        zone = ZoneInfo(self.timezone)
        local = slot.astimezone(zone)
        if self.period is Period.HOUR:  # hours are absolute: an hour that repeats is two
            start = _floor(local, self.period).astimezone(slot.tzinfo)
            return start + timedelta(hours=self.offset), start + timedelta(hours=self.offset + 1)
        # Days and months are calendar periods: each bound is the first instant whose local
        # time reaches that midnight (a midnight inside a gap starts when the gap ends).
        wall = _shift(_floor(local.replace(tzinfo=None), self.period), self.period, self.offset)
        end = _shift(wall, self.period, 1)
        return _instant(wall, zone, slot), _instant(end, zone, slot)


def _instant(wall: datetime, zone: ZoneInfo, like: datetime) -> datetime:
    return wall.replace(tzinfo=zone, fold=0).astimezone(like.tzinfo)
