"""Exactly when jobs and triggers fire: their UTC fire minutes on each day of the
reference year, as one bit mask a day (bit ``h * 60 + m`` is the minute h:m)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime

from engine.core.model import Job
from engine.schedule import cron, zones
from engine.schedule.need import DAY_MINUTES, DAYS, firing_days
from engine.schedule.slots import ScheduleKey, schedule_key

__all__ = ["job_masks", "trigger_masks", "union_masks", "union_per_day", "year_bits"]

_FULL = (1 << DAY_MINUTES) - 1


def year_bits(keys: Iterable[ScheduleKey]) -> int:
    """The minutes of the reference year at which any of these schedules fires, as one
    bit set."""
    days = union_masks(keys)
    chunks = (m.to_bytes(DAY_MINUTES // 8, "little") for m in days)
    return int.from_bytes(b"".join(chunks), "little")


def _mh_mask(minutes: Iterable[int], hours: Iterable[int]) -> int:
    mins = list(minutes)
    return sum(1 << (h * 60 + m) for h in hours for m in mins)


def job_masks(job: Job) -> tuple[int, ...]:
    """The job's UTC fire minutes on each reference day, as bit masks."""
    return _masks(schedule_key(job))


@functools.lru_cache(maxsize=4096)
def _masks(key: ScheduleKey) -> tuple[int, ...]:
    text, both, name, _ = key
    c = cron.parse(text, allow_both_day_fields=both)
    mh = _mh_mask(c.minutes, c.hours)
    fires = firing_days(c)  # fires[i + 1] is DAYS[i]
    if name is None:
        return tuple(mh if f else 0 for f in fires[1:-1])
    out = []
    for i, offset in enumerate(_noon_offsets(name)):
        local = sum((mh if fires[i + 1 + k] else 0) << (DAY_MINUTES * (k + 1)) for k in (-1, 0, 1))
        out.append((local >> (DAY_MINUTES + offset)) & _FULL)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _noon_offsets(name: str) -> tuple[int, ...]:
    """The zone's UTC offset (minutes) at noon UTC of each reference day."""
    z = zones.zone(name)
    return tuple(
        zones.offset_minutes(datetime(d.year, d.month, d.day, 12, tzinfo=UTC), z) for d in DAYS
    )


@functools.lru_cache(maxsize=1024)
def trigger_masks(text: str) -> tuple[int, ...]:
    c = cron.parse_cloudflare(text)
    mh = _mh_mask(c.minutes, c.hours)
    return tuple(mh if f else 0 for f in firing_days(c)[1:-1])


def union_masks(keys: Iterable[ScheduleKey]) -> list[int]:
    """The minutes at which any of these schedules fires, a mask per reference day."""
    union = [0] * len(DAYS)
    for key in set(keys):
        for i, m in enumerate(_masks(key)):
            union[i] |= m
    return union


def union_per_day(jobs: Iterable[Job]) -> float:
    """Distinct minutes a day at which some job fires: no set of triggers invokes less."""
    return sum(m.bit_count() for m in union_masks(map(schedule_key, jobs))) / len(DAYS)
