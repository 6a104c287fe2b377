"""The greedy merge counts the minutes two triggers share only when a pair reaches the top
of its heap (engine/schedule/fold.py). It must merge exactly as counting every pair's
shared minutes up front does: here that plain version, against it on random jobs."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.schedule import fold
from engine.schedule.firing import year_bits
from engine.schedule.need import DAYS, Need, schedule_need
from engine.schedule.slots import schedule_key
from tests.property.cron_strategies import a_job
from tests.property.test_fold_properties import as_job


def plain_greedy(parts: Sequence[Need], fires: Sequence[int], budget: int) -> list[list[int]]:
    """The greedy merge as it was first written: every pair's exact added waste."""
    alive = {i: (n, fires[i], [i]) for i, n in enumerate(parts)}
    heap: list[tuple[float, str, str, int, int]] = []

    def push(i: int, j: int) -> None:
        (a, fa, _), (b, fb, _) = alive[i], alive[j]
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
    waste = sum(n.per_day - f.bit_count() / len(DAYS) for n, f, _ in alive.values())
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
        if len(alive) <= budget and (best is None or waste < best[0] - 1e-9):
            best = (waste, [sorted(c) for _, _, c in alive.values()])
    assert best is not None
    return best[1]


@settings(max_examples=60)
@given(
    specs=st.lists(a_job(), min_size=2, max_size=30),
    budget=st.integers(min_value=1, max_value=10),
)
def test_the_lazy_greedy_merges_as_counting_every_pair_up_front_does(
    specs: list[dict[str, Any]], budget: int
) -> None:
    jobs = [as_job(i, spec) for i, spec in enumerate(specs)]
    groups: dict[str, tuple[Need, list[Any]]] = {}
    for job in jobs:
        key = schedule_key(job)
        need = schedule_need(key)
        groups.setdefault(need.text, (need, []))[1].append(key)
    parts = [need for need, _ in groups.values()]
    fires = [year_bits(keys) for _, keys in groups.values()]
    assume(len(parts) > budget)  # fold merges only then
    assert fold._greedy(parts, fires, budget) == plain_greedy(parts, fires, budget)
