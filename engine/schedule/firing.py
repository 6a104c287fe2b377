"""Exactly when jobs and triggers fire: their UTC fire minutes on each day of the
reference year, as one bit mask a day (bit ``h * 60 + m`` is the minute h:m)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from engine.core.model import Job
from engine.schedule import cron, zones
from engine.schedule.need import DAY_MINUTES, DAYS, fires_on, job_cron

__all__ = ["job_masks", "trigger_masks", "union_per_day", "year_bits"]

_FULL = (1 << DAY_MINUTES) - 1


def year_bits(jobs: Iterable[Job]) -> int:
    """The minutes of the reference year at which any of ``jobs`` fires, as one bit set."""
    days = [0] * len(DAYS)
    for job in jobs:
        for i, m in enumerate(job_masks(job)):
            days[i] |= m
    chunks = (m.to_bytes(DAY_MINUTES // 8, "little") for m in days)
    return int.from_bytes(b"".join(chunks), "little")


def _mh_mask(minutes: Iterable[int], hours: Iterable[int]) -> int:
    mins = list(minutes)
    return sum(1 << (h * 60 + m) for h in hours for m in mins)


def job_masks(job: Job) -> list[int]:
    """The job's UTC fire minutes on each reference day, as bit masks."""
    c = job_cron(job)
    mh = _mh_mask(c.minutes, c.hours)
    if job.timezone is None:
        return [mh if fires_on(c, d) else 0 for d in DAYS]
    z = zones.zone(job.timezone)
    out = []
    for d in DAYS:
        local = sum(
            (mh if fires_on(c, d + timedelta(days=k)) else 0) << (DAY_MINUTES * (k + 1))
            for k in (-1, 0, 1)
        )
        noon = datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
        out.append((local >> (DAY_MINUTES + zones.offset_minutes(noon, z))) & _FULL)
    return out


def trigger_masks(text: str) -> list[int]:
    c = cron.parse_cloudflare(text)
    mh = _mh_mask(c.minutes, c.hours)
    return [mh if fires_on(c, d) else 0 for d in DAYS]


def union_per_day(jobs: Iterable[Job]) -> float:
    """Distinct minutes a day at which some job fires: no set of triggers invokes less."""
    union = [0] * len(DAYS)
    for job in jobs:
        for i, m in enumerate(job_masks(job)):
            union[i] |= m
    return sum(m.bit_count() for m in union) / len(DAYS)
