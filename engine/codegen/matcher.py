"""The Worker's schedule matcher: data compiled from the parsed crons, plus the JS that
reads it (``MATCHER_JS``).

Everything the Worker would otherwise work out each minute is worked out here, once:

- each distinct schedule of a trigger (cron, zone, DST rules) appears once, with the
  message types of every job that has it, so a trigger of 1,000 jobs tests each distinct
  schedule once per invocation, not each job;
- a schedule is bit masks: minutes (two 30-bit halves), hours, months, and an index into
  a shared table of day patterns (``days[i][(dim - 28) * 7 + w]`` holds bit d for each
  matching day d of a month of ``dim`` days whose 1st is weekday ``w``, 0 = SUN), so the
  whole dialect (lists, ranges, steps, L, LW, W, #, xL, the day-field OR rule) reaches
  the Worker already compiled, and the JS needs no parser;
- a zone is its UTC offset at the start of the horizon and its offset changes through
  it (``engine.schedule.zones.transitions``), so the Worker reads a zoned schedule's wall
  clock with one addition instead of ``Intl``, and applies the DST rules of
  ``engine.schedule.zones`` from the same transitions the Python runtime uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from engine.codegen.matcher_js import MATCHER_JS
from engine.core.model import Job
from engine.schedule import cron, zones
from engine.schedule.slots import ScheduleKey, schedule_key

__all__ = ["MATCHER_JS", "Tables", "worker_matcher"]

_MINUTE_MS = 60_000


def _ms(t: datetime) -> int:
    return int(t.timestamp()) * 1000


def _mask(values: Iterable[int]) -> int:
    return sum(1 << v for v in set(values))


class Tables:
    """The shared tables (day patterns, zones) that schedule entries point into."""

    def __init__(self) -> None:
        self._days: dict[tuple[int, ...], int] = {}
        self._zones: set[str] = set()
        # Jobs share schedules: each distinct one is parsed and compiled once, and keeps
        # its canonical text (equal entries of differently spelled crons group together).
        self._entries: dict[ScheduleKey, tuple[dict[str, Any], str]] = {}

    def schedule(
        self, c: cron.Cron, *, zone: str | None = None, gap: str = "shift", overlap: str = "first"
    ) -> dict[str, Any]:
        """One schedule's entry (without its types)."""
        days = tuple(_mask(days) for by_weekday in c.days for days in by_weekday)
        low, high = [m for m in c.minutes if m < 30], [m - 30 for m in c.minutes if m >= 30]
        out: dict[str, Any] = {
            "minutes": [_mask(low), _mask(high)],
            "hours": _mask(c.hours),
            "months": _mask(c.months),
            "days": self._days.setdefault(days, len(self._days)),
            # One shape for every entry keeps the Worker's property reads monomorphic.
            "zone": zone,
            "gap": gap if zone is not None else None,
            "overlap": overlap if zone is not None else None,
        }
        if zone is not None:
            self._zones.add(zone)
        return out

    def job_schedule(self, job: Job) -> tuple[dict[str, Any], str]:
        """The job's schedule entry (shared: never change it) and its canonical text."""
        key = schedule_key(job)
        found = self._entries.get(key)
        if found is None:
            c = cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)
            gap, overlap = job.dst.gap.value, job.dst.overlap.value
            entry = self.schedule(c, zone=job.timezone, gap=gap, overlap=overlap)
            found = self._entries[key] = (entry, json.dumps(entry, sort_keys=True))
        return found

    def json(self) -> dict[str, Any]:
        """The tables: the horizon the zone tables cover (epoch ms, end excluded), the day
        patterns, and each zone's offset at the horizon's start with its transitions
        ``[instant ms, offset before, offset after]`` (offsets in minutes)."""
        first, last = zones.HORIZON
        start = datetime(first, 1, 1, tzinfo=UTC)
        return {
            "horizon": [_ms(start), _ms(datetime(last + 1, 1, 1, tzinfo=UTC))],
            "days": [list(days) for days in self._days],
            "zones": {
                name: {
                    "offset": zones.offset_minutes(start, zones.zone(name)),
                    "transitions": [
                        [_ms(tr.at), tr.before, tr.after]
                        for tr in zones.transitions(name, first, last)
                    ],
                }
                for name in sorted(self._zones)
            },
        }


def worker_matcher(triggers: Iterable[tuple[str, Sequence[Job]]]) -> dict[str, Any]:
    """The Worker's matcher data: the tables, and for each trigger its distinct schedules,
    each with the sorted types of the jobs that have it (sorted by their first type)."""
    tables = Tables()
    out: dict[str, list[dict[str, Any]]] = {}
    for trigger, jobs in triggers:
        groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for job in jobs:
            entry, text = tables.job_schedule(job)
            groups.setdefault(text, (entry, []))[1].append(job.type)
        schedules = [{"types": sorted(types), **entry} for entry, types in groups.values()]
        out[trigger] = sorted(schedules, key=lambda s: s["types"][0])
    return {**tables.json(), "triggers": out}
