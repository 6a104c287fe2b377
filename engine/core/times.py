"""Time helpers every layer uses: the one ISO 8601 format for slots, and minute flooring."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(t: datetime) -> str:
    """``2026-10-31T10:00:00Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)
