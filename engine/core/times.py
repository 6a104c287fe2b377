"""Time helpers every layer uses: the injected clock's type, the one ISO 8601 format for
slots, minute flooring, and the start of a UTC day."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

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
