"""``catch_up.since``: a date (midnight in the job's zone, UTC if none) or a time with its
offset, as YAML gives it (a date or timestamp when unquoted, else a string), read by one
rule for validation and for the model."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from engine.core.describe import show

_FIX = "write a date as YYYY-MM-DD or a time as 2026-05-01T00:00:00Z"


def problem(value: object) -> tuple[str, str] | None:
    """(problem, fix) when ``value`` is not a date or an aware time, else None."""
    parsed = _parse(value)
    if parsed is None:
        return f"{show(value)} is not a date or a time", _FIX
    if isinstance(parsed, datetime) and parsed.tzinfo is None:
        return (
            f"{show(value)} has no UTC offset",
            "add Z for UTC (2026-05-01T00:00:00Z), or write a date alone",
        )
    return None


def instant(value: object, zone: str | None) -> datetime:
    """The aware UTC instant of a ``value`` that passed :func:`problem`."""
    parsed = _parse(value)
    if isinstance(parsed, datetime):
        return parsed.astimezone(UTC)
    assert parsed is not None, "validated before the model is built"
    midnight = datetime.combine(parsed, time(), tzinfo=ZoneInfo(zone) if zone else UTC)
    return midnight.astimezone(UTC)


def _parse(value: object) -> date | datetime | None:
    if isinstance(value, date):  # a datetime is a date too
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return None
