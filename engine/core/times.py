"""Time helpers every layer uses: the injected clock's type, the one ISO 8601 format for
slots, minute flooring, the start of a UTC day, and the one sane range of slots."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]  # injected everywhere; the real one is engine.app.wiring.utc_now
#: Injected like the clock, so that retries and schedules are tested without waiting.
Sleep = Callable[[float], Awaitable[None]]


def iso(t: datetime) -> str:
    """``2026-10-31T10:00:00Z``."""
    u = t.astimezone(UTC)
    # On every message: %-formatting costs 40% of strftime, and 60% of an f-string.
    fields = (u.year, u.month, u.day, u.hour, u.minute, u.second)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % fields  # noqa: UP031


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def as_utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive datetime is taken as UTC (slots are UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def utc_day_start(t: datetime) -> datetime:
    """00:00 UTC of ``t``'s UTC day. Naive datetimes are taken as UTC (slots are UTC)."""
    return as_utc(t).replace(hour=0, minute=0, second=0, microsecond=0)


#: The earliest slot cronwright accepts anywhere: nothing it runs predates the Unix epoch.
EARLIEST_SLOT = datetime(1970, 1, 1, tzinfo=UTC)
#: How far after now a slot may be: a year, its leap day included.
LATEST_AHEAD = timedelta(days=366)
#: What every refusal by :func:`slot_out_of_range` suggests instead.
SLOT_RANGE_HINT = "give a time from 1970-01-01T00:00:00Z to a year after now"


def slot_out_of_range(slot: datetime, now: datetime) -> str | None:
    """Why ``slot`` is not a sane slot, or None. Slots run from 1970-01-01T00:00:00Z to a
    year after ``now``: every entry (a message body, a command's time, a stored dead
    letter) refuses the others, before any window or schedule arithmetic can overflow
    and before Postgres can store one as ``-infinity``. Naive times are taken as UTC."""
    slot, now = as_utc(slot), as_utc(now)
    if slot < EARLIEST_SLOT:
        return f"{iso(slot)} is before {iso(EARLIEST_SLOT)}, the earliest slot"
    if slot - now > LATEST_AHEAD:
        return f"{iso(slot)} is more than a year after now ({iso(now)})"
    return None
