"""Folding: cover every job's UTC fire times with at most ``budget`` Cloudflare triggers.

Each job has a *need*: the smallest cron-shaped set of UTC minutes (minutes x hours x
days x months) that holds every instant it can fire at. A UTC job's need is its own cron;
a zoned job's need adds every offset its zone uses (and the instants a DST gap shifts
runs to), moving day fields by the day the offset crosses. Jobs with the same need share
a trigger. While there are more needs than the budget allows, the pair of triggers whose
merge (the field-wise union) adds the fewest invocations per day is merged: greedy, and
good because a union that shares hours or minutes costs little.

Invocations per day are averaged over the reference year 2027 (``REFERENCE_YEAR``). The
Worker sends, at each invocation, only the trigger's jobs whose own schedule matches.
"""

from __future__ import annotations

import calendar
import functools
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from engine.core.model import Gap, Job
from engine.schedule import cron, zones
from engine.schedule.cronfields import (
    DOM,
    DOW,
    HOUR,
    MINUTE,
    MONTH,
    Field,
    field_values,
    render,
)
from engine.schedule.cronparse import parse_field

__all__ = ["Fold", "Need", "Trigger", "fold", "need_of", "stats", "union_per_day"]

REFERENCE_YEAR = 2027
_DAYS = [date(REFERENCE_YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
_ALL_MONTHS = frozenset(range(1, 13))
_DAY_MINUTES = 1440
_FULL = (1 << _DAY_MINUTES) - 1


@dataclass(frozen=True)
class Need:
    """A cron-shaped set of UTC minutes. ``day_kind`` is ``any``, ``dom`` / ``dow`` (a
    plain value set in ``day_values``; weekdays 1 = SUN) or ``text`` (the day fields as
    written in ``day_text``, for L, W, # and both-field crons)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    day_kind: str = "any"
    day_values: frozenset[int] = frozenset()
    day_text: tuple[str, str] = ("*", "*")

    @functools.cached_property
    def text(self) -> str:
        """The canonical Cloudflare cron of this need."""
        if self.day_kind == "dom":
            dom, dow = render(DOM, self.day_values, steps=True, names=False), "*"
        elif self.day_kind == "dow":
            dom, dow = "*", render(DOW, self.day_values, steps=False, names=True, full="*")
        else:
            dom, dow = self.day_text
        fields = [
            render(MINUTE, self.minutes, steps=True, names=False),
            render(HOUR, self.hours, steps=True, names=False),
            dom,
            render(MONTH, self.months, steps=True, names=False),
            dow,
        ]
        return cron.parse_cloudflare(" ".join(fields)).canonical

    def merge(self, other: Need) -> Need:
        kind, values, text = "any", frozenset[int](), ("*", "*")
        if self.day_kind == other.day_kind and self.day_kind in ("dom", "dow"):
            kind, values = self.day_kind, self.day_values | other.day_values
        elif self.day_kind == other.day_kind == "text" and self.day_text == other.day_text:
            kind, text = "text", self.day_text
        return _need(
            self.minutes | other.minutes, self.hours | other.hours, self.months | other.months,
            kind, values, text,
        )  # fmt: skip

    @functools.cached_property
    def days(self) -> int:
        """On how many days of the reference year it fires."""
        if self.day_kind == "text":
            c = cron.parse_cloudflare(self.text)
            return sum(1 for d in _DAYS if _cron_fires_on(c, d))
        counts = _counts()
        if self.day_kind == "any":
            return sum(counts.month[m] for m in self.months)
        table = counts.dom if self.day_kind == "dom" else counts.dow
        return sum(table[m].get(v, 0) for m in self.months for v in self.day_values)

    @property
    def per_day(self) -> float:
        """Invocations per day, averaged over the reference year."""
        return len(self.minutes) * len(self.hours) * self.days / len(_DAYS)


def _need(
    minutes: frozenset[int],
    hours: frozenset[int],
    months: frozenset[int],
    kind: str,
    values: frozenset[int] = frozenset(),
    text: tuple[str, str] = ("*", "*"),
) -> Need:
    full = {"dom": 31, "dow": 7}
    if kind in full and len(values) == full[kind]:
        kind, values = "any", frozenset()
    return Need(minutes, hours, months, kind, values, text)


@dataclass(frozen=True)
class _Counts:
    month: dict[int, int]
    dom: dict[int, dict[int, int]]
    dow: dict[int, dict[int, int]]


@functools.cache
def _counts() -> _Counts:
    c = _Counts(
        {m: 0 for m in _ALL_MONTHS}, {m: {} for m in _ALL_MONTHS}, {m: {} for m in _ALL_MONTHS}
    )
    for d in _DAYS:
        c.month[d.month] += 1
        c.dom[d.month][d.day] = c.dom[d.month].get(d.day, 0) + 1
        w = (d.weekday() + 1) % 7 + 1  # 1 = SUN
        c.dow[d.month][w] = c.dow[d.month].get(w, 0) + 1
    return c


def _cron_fires_on(c: cron.Cron, d: date) -> bool:
    if d.month not in c.months:
        return False
    first, dim = calendar.monthrange(d.year, d.month)
    return d.day in c.days[dim - 28][(first + 1) % 7]


def _utc_need(c: cron.Cron) -> Need:
    f = c.canonical.split(" ")
    dom, dow = f[2], f[4]
    minutes, hours = frozenset(c.minutes), frozenset(c.hours)
    if dom == "*" and dow == "*":
        return _need(minutes, hours, c.months, "any")
    if dow == "*" and not any(ch in dom for ch in "LW"):
        return _need(minutes, hours, c.months, "dom", _values(DOM, dom))
    if dom == "*" and not any(ch in dow for ch in "L#"):
        return _need(minutes, hours, c.months, "dow", _values(DOW, dow))
    return _need(minutes, hours, c.months, "text", text=(dom, dow))


def _values(f: Field, text: str) -> frozenset[int]:
    return field_values(parse_field(f, text))


def job_cron(job: Job) -> cron.Cron:
    return cron.parse(job.cron, allow_both_day_fields=job.allow_both_day_fields)


def need_of(job: Job) -> Need:
    """The UTC minutes a job can fire at, as a cron-shaped set."""
    c = job_cron(job)
    local = _utc_need(c)
    if job.timezone is None:
        return local
    name = job.timezone
    wall_minutes = {h * 60 + m for h in c.hours for m in c.minutes}
    pairs = {(lm, o) for lm in wall_minutes for o in zones.offsets(name)}
    crosses_midnight = False
    if job.dst.gap is Gap.SHIFT:
        for tr in zones.transitions(name, *zones.HORIZON):
            if tr.after <= tr.before:
                continue
            at = tr.at.astimezone(UTC)
            start = (at.hour * 60 + at.minute + tr.before) % _DAY_MINUTES  # first lost minute
            lost = range(start, start + tr.after - tr.before)
            if any(lm % _DAY_MINUTES in wall_minutes for lm in lost):
                end = start + tr.after - tr.before
                crosses_midnight |= end >= _DAY_MINUTES
                pairs.add((end % _DAY_MINUTES, tr.after))
    xs = {lm - o for lm, o in pairs}
    shifts = {x // _DAY_MINUTES for x in xs}
    utc = {x % _DAY_MINUTES for x in xs}
    minutes = frozenset(u % 60 for u in utc)
    hours = frozenset(u // 60 for u in utc)
    if shifts == {0} and not crosses_midnight:
        return _need(minutes, hours, local.months, local.day_kind, local.day_values, local.day_text)
    months = local.months
    if months != _ALL_MONTHS:
        months = frozenset((m - 1 + s) % 12 + 1 for m in months for s in shifts | {0})
    if local.day_kind == "dow" and not crosses_midnight:
        moved = frozenset((v - 1 + s) % 7 + 1 for v in local.day_values for s in shifts)
        return _need(minutes, hours, months, "dow", moved)
    return _need(minutes, hours, months, "any")


@dataclass(frozen=True)
class Trigger:
    cron: str  # canonical
    types: tuple[str, ...]  # the message types it dispatches, sorted
    need: Need = field(repr=False)


@dataclass(frozen=True)
class Fold:
    triggers: tuple[Trigger, ...]  # sorted by cron
    schedules: int  # distinct schedules (needs) before folding

    @property
    def folded(self) -> bool:
        return self.schedules > len(self.triggers)

    def trigger_of(self) -> Mapping[str, str]:
        """message type -> the trigger that dispatches it."""
        return {t: trig.cron for trig in self.triggers for t in trig.types}

    @property
    def per_day(self) -> float:
        return sum(t.need.per_day for t in self.triggers)


def fold(jobs: Iterable[Job], budget: int) -> Fold:
    """At most ``budget`` triggers covering every job; each job on exactly one."""
    groups: dict[str, tuple[Need, list[Job]]] = {}
    for job in jobs:
        need = need_of(job)
        groups.setdefault(need.text, (need, []))[1].append(job)
    parts = [need for need, _ in groups.values()]
    clusters = [[i] for i in range(len(parts))]
    if len(parts) > budget:
        fires = [_year_bits(js) for _, js in groups.values()]
        clusters = _improve(parts, fires, _greedy(parts, fires, max(budget, 1)))
    merged: dict[str, tuple[Need, list[str]]] = {}
    for cluster in clusters:  # two unions may still render as the same cron
        need = _union(parts, cluster)
        types = [j.type for i in cluster for j in groups[parts[i].text][1]]
        if need.text in merged:
            old, old_types = merged[need.text]
            merged[need.text] = (old.merge(need), old_types + types)
        else:
            merged[need.text] = (need, types)
    triggers = (Trigger(text, tuple(sorted(ts)), need) for text, (need, ts) in merged.items())
    return Fold(tuple(sorted(triggers, key=lambda t: t.cron)), len(groups))


def _union(parts: Sequence[Need], cluster: Iterable[int]) -> Need:
    return functools.reduce(Need.merge, (parts[i] for i in cluster))


def _year_bits(jobs: Iterable[Job]) -> int:
    """The minutes of the reference year at which any of ``jobs`` fires, as one bit set."""
    days = [0] * len(_DAYS)
    for job in jobs:
        for i, m in enumerate(_job_masks(job)):
            days[i] |= m
    chunks = (m.to_bytes(_DAY_MINUTES // 8, "little") for m in days)
    return int.from_bytes(b"".join(chunks), "little")


def _wasted(need: Need, fires: int) -> float:
    """Invocations a day that find none of the trigger's jobs due."""
    return need.per_day - fires.bit_count() / len(_DAYS)


def _greedy(parts: Sequence[Need], fires: Sequence[int], budget: int) -> list[list[int]]:
    """Merge the pair that adds the least waste, down to one cluster of part indices, and
    keep the least wasteful state of at most ``budget`` clusters on the way (two triggers
    firing in one minute are two invocations, one of them maybe wasted)."""
    alive = {i: (n, fires[i], [i]) for i, n in enumerate(parts)}
    heap: list[tuple[float, str, str, int, int]] = []

    def push(i: int, j: int) -> None:
        (a, fa, _), (b, fb, _) = alive[i], alive[j]
        # merged waste minus both wastes: the added invocations, plus the minutes both
        # fire at (each was useful twice, now once); no shared minute of day, no overlap
        shared = a.minutes & b.minutes and a.hours & b.hours
        both = (fa & fb).bit_count() / len(_DAYS) if shared else 0.0
        delta = a.merge(b).per_day - a.per_day - b.per_day + both
        first, second = sorted((a.text, b.text))
        heapq.heappush(heap, (delta, first, second, i, j))

    ids = sorted(alive, key=lambda i: alive[i][0].text)
    for x, i in enumerate(ids):
        for j in ids[x + 1 :]:
            push(i, j)
    next_id = len(parts)
    waste = sum(_wasted(n, f) for n, f, _ in alive.values())
    best: tuple[float, list[list[int]]] | None = None
    while len(alive) > 1:
        delta, _, _, i, j = heapq.heappop(heap)
        if i not in alive or j not in alive:
            continue
        (a, fa, ca), (b, fb, cb) = alive.pop(i), alive.pop(j)
        alive[next_id] = (a.merge(b), fa | fb, ca + cb)
        for k in sorted(alive):
            if k != next_id:
                push(k, next_id)
        next_id += 1
        waste += delta
        # Merging on past the budget may pay: a forced merge can make later ones free.
        if len(alive) <= budget and (best is None or waste < best[0] - _EPSILON):
            best = (waste, [sorted(c) for _, _, c in alive.values()])
    assert best is not None
    return best[1]


_EPSILON = 1e-9


def _improve(
    parts: Sequence[Need], fires: Sequence[int], clusters: list[list[int]], rounds: int = 2
) -> list[list[int]]:
    """Move single schedules between triggers while that lowers the waste (the greedy
    merge never undoes an early choice)."""

    def state(cluster: Iterable[int]) -> tuple[Need, int]:
        ids = list(cluster)
        return _union(parts, ids), functools.reduce(int.__or__, (fires[i] for i in ids))

    states = [state(c) for c in clusters]
    for _ in range(rounds if len(clusters) > 1 else 0):
        moved = False
        for a, cluster in enumerate(clusters):
            for i in list(cluster):
                if len(cluster) < 2:
                    break
                rest = state(k for k in cluster if k != i)
                saved = _wasted(*states[a]) - _wasted(*rest)
                best: tuple[float, int, Need] | None = None
                part, own = parts[i], fires[i].bit_count()
                for b, (other, other_fires) in enumerate(states):
                    if b == a:
                        continue
                    joined = other.merge(part)
                    shared = other.minutes & part.minutes and other.hours & part.hours
                    both = (other_fires & fires[i]).bit_count() if shared else 0
                    added = joined.per_day - other.per_day - (own - both) / len(_DAYS)
                    gain = saved - added
                    if gain > _EPSILON and (best is None or gain > best[0]):
                        best = (gain, b, joined)
                if best is not None:
                    _, b, joined = best
                    cluster.remove(i)
                    clusters[b].append(i)
                    states[a], states[b] = rest, (joined, states[b][1] | fires[i])
                    moved = True
        if not moved:
            break
    return [c for c in clusters if c]


# --- statistics: invocations and wasted invocations per day ------------------------


def _mh_mask(minutes: Iterable[int], hours: Iterable[int]) -> int:
    mins = list(minutes)
    return sum(1 << (h * 60 + m) for h in hours for m in mins)


def _job_masks(job: Job) -> list[int]:
    """The job's UTC fire minutes on each reference day, as bit masks."""
    c = job_cron(job)
    mh = _mh_mask(c.minutes, c.hours)
    if job.timezone is None:
        return [mh if _cron_fires_on(c, d) else 0 for d in _DAYS]
    z = zones.zone(job.timezone)
    out = []
    for d in _DAYS:
        local = sum(
            (mh if _cron_fires_on(c, d + timedelta(days=k)) else 0) << (_DAY_MINUTES * (k + 1))
            for k in (-1, 0, 1)
        )
        noon = datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
        out.append((local >> (_DAY_MINUTES + zones.offset_minutes(noon, z))) & _FULL)
    return out


def _trigger_masks(text: str) -> list[int]:
    c = cron.parse_cloudflare(text)
    mh = _mh_mask(c.minutes, c.hours)
    return [mh if _cron_fires_on(c, d) else 0 for d in _DAYS]


def stats(result: Fold, jobs: Iterable[Job]) -> dict[str, tuple[float, float]]:
    """trigger -> (invocations per day, wasted invocations per day)."""
    by_type = {j.type: j for j in jobs}
    out: dict[str, tuple[float, float]] = {}
    for trig in result.triggers:
        masks = _trigger_masks(trig.cron)
        useful = [0] * len(_DAYS)
        for t in trig.types:
            for i, m in enumerate(_job_masks(by_type[t])):
                useful[i] |= m
        n = len(_DAYS)
        inv = sum(m.bit_count() for m in masks) / n
        used = sum((u & m).bit_count() for u, m in zip(useful, masks, strict=True)) / n
        out[trig.cron] = (inv, inv - used)
    return out


def union_per_day(jobs: Iterable[Job]) -> float:
    """Distinct minutes a day at which some job fires: no set of triggers invokes less."""
    union = [0] * len(_DAYS)
    for job in jobs:
        for i, m in enumerate(_job_masks(job)):
            union[i] |= m
    return sum(m.bit_count() for m in union) / len(_DAYS)
