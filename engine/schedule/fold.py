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

from engine.core.model import Job
from engine.schedule.firing import trigger_masks, union_masks, union_per_day, year_bits
from engine.schedule.need import DAYS, REFERENCE_YEAR, Need, need_of

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
        fires = [year_bits(js) for _, js in groups.values()]
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


def _wasted(need: Need, fires: int) -> float:
    """Invocations a day that find none of the trigger's jobs due."""
    return need.per_day - fires.bit_count() / len(DAYS)


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
        both = (fa & fb).bit_count() / len(DAYS) if shared else 0.0
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
                    added = joined.per_day - other.per_day - (own - both) / len(DAYS)
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


def stats(result: Fold, jobs: Iterable[Job]) -> dict[str, tuple[float, float]]:
    """trigger -> (invocations per day, wasted invocations per day)."""
    by_type = {j.type: j for j in jobs}
    out: dict[str, tuple[float, float]] = {}
    for trig in result.triggers:
        masks = trigger_masks(trig.cron)
        useful = union_masks(by_type[t] for t in trig.types)
        n = len(DAYS)
        inv = sum(m.bit_count() for m in masks) / n
        used = sum((u & m).bit_count() for u, m in zip(useful, masks, strict=True)) / n
        out[trig.cron] = (inv, inv - used)
    return out
