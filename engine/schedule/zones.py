"""Local-time schedules: a cron read on a zone's wall clock, seen from UTC.

A wall time is represented as a UTC-tagged datetime holding the local fields, so the
cron evaluator (which reads fields) applies unchanged. The DST rules:

- gap (spring forward): a matching wall time that does not exist runs at the first
  instant after the gap, once (``shift``), or not at all (``skip``);
- overlap (fall back): a matching wall time that occurs twice runs at its first
  occurrence (``first``) or at both (``both``).

``ZonedSchedule`` keeps the ``Schedule`` interface: ``matches`` and ``next_after`` take
and return UTC instants. The generated Worker applies the same rules (``templates_js``).
"""

from __future__ import annotations

import bisect
import difflib
import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from engine.core.errors import ConfigError
from engine.core.model import Dst, Gap, Repeat
from engine.schedule.cron import Cron

__all__ = ["Transition", "ZonedSchedule", "transitions", "zone", "zone_problem"]

_MINUTE = timedelta(minutes=1)
# A fold lasts at most this long (Lord Howe: 30 min, most zones 1 h, none over 3 h).
_MAX_FOLD = timedelta(hours=3)
#: The years the generator considers when it covers a zone's offsets and transitions.
HORIZON = (2025, 2040)


@functools.cache
def _names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def zone_problem(name: str) -> tuple[str, str] | None:
    """(problem, hint) when ``name`` is not an IANA zone, naming the closest ones."""
    if name in _names():
        return None
    close = difflib.get_close_matches(name, _names(), n=3, cutoff=0.5)
    if not close:
        lowered = {n.lower(): n for n in _names()}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    hint = "write an IANA name such as Europe/Berlin"
    if close:
        hint = f"did you mean {', '.join(close)}?"
    return f"unknown time zone '{name}'", hint


@functools.cache
def zone(name: str) -> ZoneInfo:
    problem = zone_problem(name)
    if problem is not None:
        raise ConfigError(problem[0], hint=problem[1])
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unreadable
        raise ConfigError(f"time zone '{name}' cannot be read", hint="install tzdata") from exc


def wall(t: datetime, z: ZoneInfo) -> datetime:
    """The local fields of instant ``t`` (a UTC-tagged wall time)."""
    return t.astimezone(z).replace(tzinfo=UTC, fold=0)


def offset_minutes(t: datetime, z: ZoneInfo) -> int:
    delta = t.astimezone(z).utcoffset()
    assert delta is not None
    return int(delta.total_seconds() // 60)


@dataclass(frozen=True)
class Transition:
    """A change of offset at instant ``at``: a gap when ``after > before``."""

    at: datetime
    before: int  # offset in minutes
    after: int


#: How often :func:`transitions` samples a zone's offset. Two changes of offset closer
#: than this would hide each other; in the tz database no zone has had two within a day
#: in the horizon (tests/unit/test_zone_transitions.py compares every zone with a
#: sample every 6 hours), and a day is a quarter of the work of 6 hours.
_SAMPLE = timedelta(days=1)


@functools.cache
def transitions(name: str, first_year: int, last_year: int) -> tuple[Transition, ...]:
    """The zone's offset changes in [first_year, last_year], found by sampling once a day
    (:data:`_SAMPLE`) and bisecting to the minute."""
    return _transitions(name, first_year, last_year, _SAMPLE)


def _transitions(
    name: str, first_year: int, last_year: int, step: timedelta
) -> tuple[Transition, ...]:
    z = zone(name)
    out: list[Transition] = []
    t = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    prev = offset_minutes(t, z)
    while t < end:
        nxt = min(t + step, end)
        off = offset_minutes(nxt, z)
        if off != prev:
            lo, hi = t, nxt  # offset(lo) == prev, offset(hi) == off
            while hi - lo > _MINUTE:
                mid = lo + (hi - lo) // 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= lo:
                    mid = lo + _MINUTE
                if offset_minutes(mid, z) == prev:
                    lo = mid
                else:
                    hi = mid
            out.append(Transition(hi, prev, off))
            prev = off
        t = nxt
    return tuple(out)


#: Farther than this from any change of offset, no wall time is repeated or skipped: a
#: zone's offset never changes by as much as two days (the widest range of offsets, UTC-12
#: to UTC+14, is 26 hours).
_CALM_MARGIN = timedelta(days=2)


@functools.cache
def _calm(name: str) -> tuple[tuple[datetime, ...], tuple[tuple[datetime, timedelta], ...]]:
    """The zone's calm spans in the horizon: the instants at least :data:`_CALM_MARGIN`
    from any of its :func:`transitions`, as the spans' starts (sorted) and, for each, its
    end and the one offset it has throughout."""
    z = zone(name)
    lo = datetime(HORIZON[0], 1, 1, tzinfo=UTC)
    hi = datetime(HORIZON[1] + 1, 1, 1, tzinfo=UTC)
    edges = [lo, *(tr.at for tr in transitions(name, *HORIZON)), hi]
    starts: list[datetime] = []
    spans: list[tuple[datetime, timedelta]] = []
    for a, b in itertools.pairwise(edges):
        if b - a > 2 * _CALM_MARGIN:
            offset = a.astimezone(z).utcoffset()
            assert offset is not None
            starts.append(a + _CALM_MARGIN)
            spans.append((b - _CALM_MARGIN, offset))
    return tuple(starts), tuple(spans)


def offsets(name: str) -> frozenset[int]:
    """Every offset (minutes) the zone uses within the horizon."""
    z = zone(name)
    found = {offset_minutes(datetime(HORIZON[0], 1, 1, tzinfo=UTC), z)}
    found |= {tr.after for tr in transitions(name, *HORIZON)}
    return frozenset(found)


class ZonedSchedule:
    """A cron on ``zone``'s wall clock, with the DST rules of ``dst``."""

    def __init__(self, cron: Cron, name: str, dst: Dst) -> None:
        self.cron = cron
        self.name = name
        self.zone = zone(name)
        self.dst = dst

    def __repr__(self) -> str:
        return f"ZonedSchedule({self.cron.canonical!r}, {self.name!r})"

    def matches(self, t: datetime) -> bool:
        t = _minute(t)
        local = t.astimezone(self.zone)
        w = local.replace(tzinfo=UTC, fold=0)
        if self.cron.matches(w):
            return not (self._repeated(local) and self.dst.overlap is Repeat.FIRST)
        if self.dst.gap is Gap.SKIP:
            return False
        before = wall(t - _MINUTE, self.zone)
        if w - before <= _MINUTE:
            return False
        found = self.cron.next_after(before)  # the first matching wall time in the gap?
        return found is not None and found < w

    def _repeated(self, local: datetime) -> bool:
        """Is ``local`` the second occurrence of its wall time?"""
        if local.fold != 1:
            return False
        naive = local.replace(tzinfo=None)
        first = naive.replace(tzinfo=self.zone, fold=0).utcoffset()
        return first != naive.replace(tzinfo=self.zone, fold=1).utcoffset()

    def next_after(self, t: datetime) -> datetime | None:
        t = _minute(t)
        # In a calm span the wall clock is UTC shifted by one offset: no gap, no
        # repeated time, so the first matching wall time after t's is the answer, if it
        # falls inside the span too. Elsewhere (near a change of offset, outside the
        # horizon), the general walk below.
        starts, spans = _calm(self.name)
        k = bisect.bisect_right(starts, t) - 1
        if k >= 0:
            end, offset = spans[k]
            if t < end:
                w = self.cron.next_after(t + offset)
                if w is not None and w - offset < end:
                    return w - offset
        try:
            return self._next_after(t)
        except OverflowError:  # past 9999-12-31, datetime's last day: as Cron.next_after
            return None

    def _next_after(self, t: datetime) -> datetime | None:
        """:meth:`next_after` by the DST rules, wherever ``t`` is (a whole minute)."""
        both = self.dst.overlap is Repeat.BOTH
        w0 = wall(t, self.zone)
        # With overlap=both a wall time before w0 may still occur again after t.
        w = self.cron.next_after(w0 - _MAX_FOLD if both else w0)
        best: datetime | None = None
        while w is not None:
            if both:
                second = self._second(w)
                if second is not None and second > t and (best is None or second < best):
                    best = second
            first = self._first(w)
            if first is not None and first > t:  # first instants never decrease with w
                return first if best is None or first < best else best
            w = self.cron.next_after(w)
        return best

    def _first(self, w: datetime) -> datetime | None:
        """The first instant wall time ``w`` occurs; in a gap, per the gap rule."""
        naive = w.replace(tzinfo=None)
        u = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if wall(u, self.zone) == w:
            return u
        if self.dst.gap is Gap.SKIP:
            return None
        # In a gap, fold=0 reads w with the offset before it (an instant after the gap)
        # and fold=1 with the offset after it (an instant before): the gap ends between.
        lo = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        hi = u
        while hi - lo > _MINUTE:
            mid = _minute(lo + (hi - lo) // 2)
            if wall(mid, self.zone) > w:
                hi = mid
            else:
                lo = mid
        return hi

    def _second(self, w: datetime) -> datetime | None:
        naive = w.replace(tzinfo=None)
        first = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if second != first and wall(second, self.zone) == w:
            return second
        return None


def _minute(t: datetime) -> datetime:
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.replace(second=0, microsecond=0)
