"""A counter's body, which records the UTC day it counts, so a counter from an earlier
day reads as 0 whether or not the midnight reset ran (a missed reset never blocks sending)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from engine.core.errors import StorageError
from engine.core.times import Clock, utc_day_start


def utc_today(clock: Clock) -> date:
    return utc_day_start(clock()).date()


@dataclass(frozen=True)
class Counter:
    """A counter body: ``{"day": "2026-11-28", "count": 3}``."""

    day: date
    count: int

    def count_on(self, day: date) -> int:
        return self.count if self.day == day else 0

    def encode(self) -> bytes:
        return json.dumps({"day": self.day.isoformat(), "count": self.count}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Counter | None:
        """The counter, or None for a body we did not write (e.g. the replaced system's
        bare integer): such a body counts for no day, so it reads as 0 and is overwritten."""
        try:
            obj = json.loads(raw)
            day, count = date.fromisoformat(obj["day"]), obj["count"]
        except (ValueError, TypeError, KeyError):
            return None
        if type(count) is not int or count < 0:
            return None
        return cls(day, count)


def check_amount(n: int) -> None:
    if type(n) is not int or n < 0:
        raise StorageError(
            f"increment must be a non-negative int, got {n!r}",
            transient=False,
            error_class="invalid_amount",
        )
