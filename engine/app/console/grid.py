"""The slot grid's shape: jobs down, time across, one cell per due slot.

Time runs left to right at one scale for every row, so a column of cells is one moment
for every job (a failure at 03:00 everywhere lines up). The scale gives the page's most
frequent job at least :data:`MIN_CELL_PX` per slot: an every-minute job over 24 hours is a
row of 1,440 cells about 11,500 px wide, which the page scrolls sideways (opening at the
newest slots) while the job names stay put. Each cell spans its slot up to the job's next
one, so an hourly job's cell is an hour wide. Pages hold at most :data:`MAX_CELLS` cells:
jobs are split over pages in manifest order, and a range that holds more slots than that
for a single job is refused with the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.model import Job
from engine.core.times import iso
from engine.schedule import zones

MAX_CELLS = 10_000
MIN_CELL_PX = 8
MIN_TRACK_PX = 960
MIN_TICK_PX = 90
_TICKS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=7),
)


class TooManyCells(Exception):
    """One job alone has more slots in the range than a page holds."""

    def __init__(self, job: Job, count: int) -> None:
        super().__init__(
            f"{job.name} has {count:,} slots in this range, more than the {MAX_CELLS:,}"
            " cells a page shows: narrow the range"
        )


def pages(wanted: Sequence[tuple[Job, Sequence[datetime]]]) -> list[list[int]]:
    """The indexes of ``wanted`` on each page, in order; each page's slots add up to at
    most :data:`MAX_CELLS` (a page of jobs without slots in the range is still one)."""
    out: list[list[int]] = [[]]
    cells = 0
    for i, (job, slots) in enumerate(wanted):
        if len(slots) > MAX_CELLS:
            raise TooManyCells(job, len(slots))
        if out[-1] and cells + len(slots) > MAX_CELLS:
            out.append([])
            cells = 0
        out[-1].append(i)
        cells += len(slots)
    return out


@dataclass(frozen=True)
class Scale:
    start: datetime
    end: datetime
    width_px: int

    def left(self, t: datetime) -> float:
        """``t``'s place on the track, in percent."""
        return 100 * (t - self.start) / (self.end - self.start)

    def span(self, a: datetime, b: datetime) -> float:
        return 100 * (b - a) / (self.end - self.start)


def scale(start: datetime, end: datetime, rows: Sequence[Sequence[datetime]]) -> Scale:
    """The track's width: every slot of every row at least :data:`MIN_CELL_PX` wide up to
    the next one, and the whole range at least :data:`MIN_TRACK_PX`."""
    seconds = (end - start).total_seconds()
    gaps = [(b - a).total_seconds() for slots in rows for a, b in itertools.pairwise(slots)]
    px_per_second = max(MIN_CELL_PX / min(gaps), MIN_TRACK_PX / seconds) if gaps else 0.0
    return Scale(start, end, max(MIN_TRACK_PX, round(seconds * px_per_second)))


@dataclass(frozen=True)
class Tick:
    left: float
    label: str


def ticks(s: Scale) -> list[Tick]:
    """Labelled times along the track (UTC), at least :data:`MIN_TICK_PX` apart: whole
    minutes, hours or days; a day's first tick shows its date."""
    seconds = (s.end - s.start).total_seconds()
    step = next(
        (t for t in _TICKS if t.total_seconds() / seconds * s.width_px >= MIN_TICK_PX),
        _TICKS[-1],
    )
    epoch = datetime(1970, 1, 5, tzinfo=s.start.tzinfo)  # a Monday: weeks start on it
    first = s.start + (epoch - s.start) % step
    out = []
    t = first
    while t < s.end:
        daily = t.hour == 0 and t.minute == 0
        label = t.strftime("%b %d") if daily else t.strftime("%H:%M")
        out.append(Tick(left=s.left(t), label=label))
        t += step
    return out


@dataclass(frozen=True)
class Cell:
    job: str
    slot: str  # ISO, UTC, Z
    status: str
    attempts: int
    left: float
    width: float
    title: str


def cells(
    s: Scale,
    job: Job,
    statuses: Sequence[tuple[datetime, str, int]],
    following: datetime | None,
) -> list[Cell]:
    """A row's cells, each from its slot to the next (the last one to ``following``, the
    job's next slot, or the end of the range)."""
    out = []
    for i, (slot, status, attempts) in enumerate(statuses):
        nxt = statuses[i + 1][0] if i + 1 < len(statuses) else following or s.end
        nxt = min(nxt, s.end)
        out.append(
            Cell(
                job=job.name,
                slot=iso(slot),
                status=status,
                attempts=attempts,
                left=s.left(slot),
                width=s.span(slot, nxt),
                title=f"{_when(job, slot)} {status}"
                + (f", {attempts} attempt{'s' * (attempts != 1)}" if attempts else ""),
            )
        )
    return out


def _when(job: Job, slot: datetime) -> str:
    """A slot as its job reads it: UTC, and a zoned job's local time first."""
    utc = slot.strftime("%Y-%m-%d %H:%MZ")
    if job.timezone is None:
        return utc
    local = slot.astimezone(zones.zone(job.timezone))
    return f"{local:%Y-%m-%d %H:%M %Z} ({utc})"
