"""Folding: cover every job's UTC fire times with at most ``budget`` Cloudflare triggers.

Each job has a *need* (engine/schedule/need.py): the cron-shaped set of UTC minutes it can
fire at. Jobs with the same need share a trigger. While there are more needs than the
budget allows, the pair of triggers whose merge (the field-wise union) adds the fewest
wasted invocations per day is merged: greedy, and good because a union that shares hours
or minutes costs little. Waste is counted against the exact fire minutes of
engine/schedule/firing.py. The Worker sends, at each invocation, only the trigger's jobs
whose own schedule matches.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.core.model import Job
from engine.schedule.firing import trigger_masks, union_masks, union_per_day, year_bits
from engine.schedule.need import (
    DAY_MINUTES,
    DAYS,
    REFERENCE_YEAR,
    Need,
    need_of,
    schedule_need,
)
from engine.schedule.slots import ScheduleKey, schedule_key

__all__ = [
    "REFERENCE_YEAR",
    "Fold",
    "Need",
    "Trigger",
    "fold",
    "need_of",
    "stats",
    "union_per_day",
]


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
        """message type -> the trigger that dispatches it (built once: callers ask it for
        each of a thousand jobs)."""
        return self._trigger_of

    @functools.cached_property
    def _trigger_of(self) -> Mapping[str, str]:
        return MappingProxyType({t: trig.cron for trig in self.triggers for t in trig.types})

    @property
    def per_day(self) -> float:
        return sum(t.need.per_day for t in self.triggers)


def fold(jobs: Iterable[Job], budget: int) -> Fold:
    """At most ``budget`` triggers covering every job; each job on exactly one."""
    return _fold(tuple((job.type, schedule_key(job)) for job in jobs), budget)


# Validation and the generator fold the same jobs in one process: fold them once.
@functools.lru_cache(maxsize=16)
def _fold(jobs: tuple[tuple[str, ScheduleKey], ...], budget: int) -> Fold:
    groups: dict[str, tuple[Need, list[tuple[str, ScheduleKey]]]] = {}
    for job in jobs:
        need = schedule_need(job[1])
        groups.setdefault(need.text, (need, []))[1].append(job)
    parts = [need for need, _ in groups.values()]
    clusters = [[i] for i in range(len(parts))]
    if len(parts) > budget:
        fires = [year_bits(key for _, key in js) for _, js in groups.values()]
        clusters = _improve(parts, fires, _greedy(parts, fires, max(budget, 1)))
    merged: dict[str, tuple[Need, list[str]]] = {}
    for cluster in clusters:  # two unions may still render as the same cron
        need = _union(parts, cluster)
        types = [t for i in cluster for t, _ in groups[parts[i].text][1]]
        if need.text in merged:
            old, old_types = merged[need.text]
            merged[need.text] = (old.merge(need), old_types + types)
        else:
            merged[need.text] = (need, types)
    triggers = (Trigger(text, tuple(sorted(ts)), need) for text, (need, ts) in merged.items())
    return Fold(tuple(sorted(triggers, key=lambda t: t.cron)), len(groups))


def _union(parts: Sequence[Need], cluster: Iterable[int]) -> Need:
    return functools.reduce(Need.merge, (parts[i] for i in cluster))


def _wasted(need: Need, fires: int) -> float:
    """Invocations a day that find none of the trigger's jobs due."""
    return need.per_day - fires.bit_count() / len(DAYS)


def _greedy(parts: Sequence[Need], fires: Sequence[int], budget: int) -> list[list[int]]:
    """Merge the pair that adds the least waste, down to one cluster of part indices, and
    keep the least wasteful state of at most ``budget`` clusters on the way (two triggers
    firing in one minute are two invocations, one of them maybe wasted)."""
    # id -> (need, fire minutes, part indices, how many fire minutes)
    alive = {i: (n, fires[i], [i], fires[i].bit_count()) for i, n in enumerate(parts)}
    year = len(DAYS) * DAY_MINUTES
    # The added waste of a merge: the added invocations, plus the minutes both fire at
    # (each was useful twice, now once; none without a shared minute of day). Counting
    # the shared minutes means two year-long bit sets, so a pair first enters the heap
    # with a lower bound of them (from the two counts), marked inexact, and is counted
    # exactly only when it reaches the top: the same merges in the same order as counting
    # every pair, at a fraction of the cost.
    heap: list[tuple[float, str, str, int, int, bool, float]] = []

    def push(i: int, j: int) -> None:
        (a, _, _, na), (b, _, _, nb) = alive[i], alive[j]
        added = a.merged_per_day(b) - a.per_day - b.per_day
        first, second = sorted((a.text, b.text))
        if a.minutes & b.minutes and a.hours & b.hours:
            least = max(0, na + nb - year) / len(DAYS)
            heapq.heappush(heap, (added + least, first, second, i, j, False, added))
        else:
            heapq.heappush(heap, (added + 0.0, first, second, i, j, True, added))

    ids = sorted(alive, key=lambda i: alive[i][0].text)
    for x, i in enumerate(ids):
        for j in ids[x + 1 :]:
            push(i, j)
    next_id = len(parts)
    waste = sum(_wasted(n, f) for n, f, _, _ in alive.values())
    best: tuple[float, list[list[int]]] | None = None
    while len(alive) > 1:
        delta, first, second, i, j, exact, added = heapq.heappop(heap)
        if i not in alive or j not in alive:
            continue
        if not exact:
            both = (alive[i][1] & alive[j][1]).bit_count() / len(DAYS)
            heapq.heappush(heap, (added + both, first, second, i, j, True, added))
            continue
        (a, fa, ca, _), (b, fb, cb, _) = alive.pop(i), alive.pop(j)
        union = fa | fb
        alive[next_id] = (a.merge(b), union, ca + cb, union.bit_count())
        for k in sorted(alive):
            if k != next_id:
                push(k, next_id)
        next_id += 1
        waste += delta
        # Merging on past the budget may pay: a forced merge can make later ones free.
        if len(alive) <= budget and (best is None or waste < best[0] - _EPSILON):
            best = (waste, [sorted(c) for _, _, c, _ in alive.values()])
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
            rests = _leave_one_out(parts, fires, cluster)
            for i in list(cluster):
                if len(cluster) < 2:
                    break
                rest = rests[i]
                saved = _wasted(*states[a]) - _wasted(*rest)
                best: tuple[float, int, Need] | None = None
                part, own = parts[i], fires[i].bit_count()
                for b, (other, other_fires) in enumerate(states):
                    if b == a:
                        continue
                    joined = other.merge(part)
                    shared = other.minutes & part.minutes and other.hours & part.hours
                    both = (other_fires & fires[i]).bit_count() if shared else 0
                    added = joined.per_day - other.per_day - (own - both) / len(DAYS)
                    gain = saved - added
                    if gain > _EPSILON and (best is None or gain > best[0]):
                        best = (gain, b, joined)
                if best is not None:
                    _, b, joined = best
                    cluster.remove(i)
                    clusters[b].append(i)
                    states[a], states[b] = rest, (joined, states[b][1] | fires[i])
                    rests = _leave_one_out(parts, fires, cluster)
                    moved = True
        if not moved:
            break
    return [c for c in clusters if c]


def _leave_one_out(
    parts: Sequence[Need], fires: Sequence[int], cluster: Sequence[int]
) -> dict[int, tuple[Need, int]]:
    """For each member of ``cluster`` (of two or more), the union of the others' needs
    and fire times: from prefix and suffix unions, linear in the cluster's size (the
    union is the same in any order)."""
    if len(cluster) < 2:
        return {}

    def unions(ids: Sequence[int]) -> list[tuple[Need | None, int]]:
        out: list[tuple[Need | None, int]] = [(None, 0)]
        for i in ids:
            need = out[-1][0]
            out.append((parts[i] if need is None else need.merge(parts[i]), out[-1][1] | fires[i]))
        return out

    before, after = unions(cluster), unions(cluster[::-1])
    n, rests = len(cluster), {}
    for t, i in enumerate(cluster):
        (a, fa), (b, fb) = before[t], after[n - 1 - t]
        need = b if a is None else a if b is None else a.merge(b)
        assert need is not None
        rests[i] = (need, fa | fb)
    return rests


def stats(result: Fold, jobs: Iterable[Job]) -> dict[str, tuple[float, float]]:
    """trigger -> (invocations per day, wasted invocations per day)."""
    by_type = {j.type: j for j in jobs}
    out: dict[str, tuple[float, float]] = {}
    for trig in result.triggers:
        masks = trigger_masks(trig.cron)
        useful = union_masks(schedule_key(by_type[t]) for t in trig.types)
        n = len(DAYS)
        inv = sum(m.bit_count() for m in masks) / n
        used = sum((u & m).bit_count() for u, m in zip(useful, masks, strict=True)) / n
        out[trig.cron] = (inv, inv - used)
    return out
