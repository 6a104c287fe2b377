"""The grid's range picker: the query string of ``/`` and ``/grid`` read into a range of
slots, or a :class:`BadQuery` with the reason (the console answers 400 with it).

``range=1h|6h|24h|7d`` (default ``24h``) is the last hours or days up to the current
minute, moving with the clock; ``from``/``to`` pick a fixed range (``to`` defaults to
now, ``from`` to a day before ``to``), each a slot time as ``cronwright slots`` reads it
(:func:`engine.app.cli.args.slot_time`: ISO 8601, UTC without an offset, within the sane
range of slots). ``job`` narrows the grid to one job (name or type), ``page`` picks a page
of jobs. A range is at most :data:`MAX_RANGE` long.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from engine.app.cli.args import slot_time
from engine.core.errors import CronwrightError
from engine.core.model import Job, Manifest
from engine.core.times import floor_minute, iso

PRESETS = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT_PRESET = "24h"
MAX_RANGE = timedelta(days=31)
MAX_PAGE = 10_000
_MAX_VALUE = 200


class BadQuery(Exception):
    """A query value the console cannot use: answered 400 with this reason."""


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime  # excluded
    preset: str | None  # a moving range (``24h``), else None: fixed by from/to
    job: Job | None
    page: int

    def query(self, **change: str | int | None) -> str:
        """This range's query string, with ``change`` applied (None drops a key)."""
        values: dict[str, str | int | None] = {
            "range": self.preset,
            "from": None if self.preset else iso(self.start),
            "to": None if self.preset else iso(self.end),
            "job": self.job.name if self.job else None,
            "page": self.page if self.page != 1 else None,
        }
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v is not None})


def _one(query: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = query.get(key, ())
    if len(values) > 1:
        raise BadQuery(f"{key} is given {len(values)} times; give it once")
    if not values:
        return None
    value = values[0]
    if len(value) > _MAX_VALUE:
        raise BadQuery(f"{key} is {len(value)} characters long; at most {_MAX_VALUE}")
    if not value.isprintable():  # a line break or a control character: never a time or a job
        raise BadQuery(f"{key} holds a character that cannot be printed")
    return value.strip()


def _time(key: str, text: str) -> datetime:
    try:
        return slot_time(text)
    except argparse.ArgumentTypeError as exc:
        raise BadQuery(f"{key}: {exc}") from None


def parse(query: Mapping[str, Sequence[str]], manifest: Manifest, now: datetime) -> Range:
    """The range a query string asks for (each key mapped to every value given)."""
    preset, start_text, end_text = (_one(query, k) for k in ("range", "from", "to"))
    job_text, page_text = _one(query, "job"), _one(query, "page")
    job = None
    if job_text:
        try:
            job = manifest.find_job(job_text)
        except CronwrightError as exc:
            raise BadQuery(f"job: {exc}") from None
    page = 1
    if page_text:
        if not (page_text.isascii() and page_text.isdigit()) or not 1 <= int(page_text) <= MAX_PAGE:
            raise BadQuery(f"page: {page_text!r} is not a page number (1 to {MAX_PAGE})")
        page = int(page_text)
    if preset and (start_text or end_text):
        raise BadQuery("give either range or from/to, not both")
    if start_text or end_text:
        end = _time("to", end_text) if end_text else now
        start = _time("from", start_text) if start_text else end - PRESETS[DEFAULT_PRESET]
        if end <= start:
            raise BadQuery(f"to {iso(end)} is not after from {iso(start)}")
        if end - start > MAX_RANGE:
            days = (end - start) / timedelta(days=1)
            raise BadQuery(
                f"the range is {days:.1f} days long; at most {MAX_RANGE.days}: narrow it"
            )
        return Range(start=start, end=end, preset=None, job=job, page=page)
    preset = preset or DEFAULT_PRESET
    if preset not in PRESETS:
        raise BadQuery(f"range: {preset!r} is not one of {', '.join(PRESETS)}")
    # Up to the current minute, included: a slot is due from its first second.
    end = floor_minute(now) + timedelta(minutes=1)
    return Range(start=end - PRESETS[preset], end=end, preset=preset, job=job, page=page)
