"""Runtime pauses (``cronwright pause`` / ``resume``), kept with their history in
``cronwright.pauses``. The manifest's ``paused: true`` is the deploy-time default; these
rows are the operator's switch. A slot inside a pause is skipped for good: never run and
never caught up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.runtime.ledger import Tx


@dataclass(frozen=True)
class Pause:
    job: str
    paused_from: datetime
    resumed_at: datetime | None
    reason: str | None

    def covers(self, slot: datetime) -> bool:
        return self.paused_from <= slot and (self.resumed_at is None or slot < self.resumed_at)


_OVERLAPPING = """
SELECT job, paused_from, resumed_at, reason FROM cronwright.pauses
WHERE job = ANY($1::text[]) AND paused_from < $3
  AND (resumed_at IS NULL OR resumed_at > $2)
ORDER BY job, paused_from
"""


async def overlapping(
    tx: Tx, jobs: list[str], start: datetime, end: datetime
) -> dict[str, list[Pause]]:
    """Each job's pauses that overlap ``[start, end)``; one query for all jobs."""
    found: dict[str, list[Pause]] = {j: [] for j in jobs}
    for r in await tx.fetch(_OVERLAPPING, jobs, start, end):
        found[r["job"]].append(Pause(r["job"], r["paused_from"], r["resumed_at"], r["reason"]))
    return found


async def is_paused(tx: Tx, job: str, slot: datetime) -> bool:
    """Whether ``slot`` of ``job`` falls inside a runtime pause."""
    pauses = await overlapping(tx, [job], slot, slot + timedelta(microseconds=1))
    return any(p.covers(slot) for p in pauses[job])
