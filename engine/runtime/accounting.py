"""Slot accounting: what became of each due slot of a job.

A slot's status comes, in this order, from the run ledger (``succeeded``, ``failed``,
``dead_lettered``, ``running``, ``paused``), then from a runtime pause covering it
(``paused``), then from ``cronwright.dispatched`` (``queued``: sent by cronwright, not
run yet), else ``missing``. The due slots are computed in Python and passed as one array,
so a job costs ONE query whatever the range.

Slots the Cloudflare Worker sent are in neither table until their run is claimed: a
slot in its first moments, or one waiting in a backlogged queue, reads ``missing``. The
reconciler gives such slots a grace period before it acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.core.errors import ConfigError
from engine.core.model import Job
from engine.core.times import iso
from engine.runtime.ledger import Db
from engine.schedule.slots import Schedule

_STATUS = """
SELECT s.slot, r.status, coalesce(r.attempt, 0) AS attempts,
       d.job IS NOT NULL AS dispatched,
       EXISTS (
           SELECT 1 FROM cronwright.pauses p
           WHERE p.job = $1 AND p.paused_from <= s.slot
             AND (p.resumed_at IS NULL OR s.slot < p.resumed_at)
       ) AS paused
FROM unnest($2::timestamptz[]) AS s(slot)
LEFT JOIN cronwright.runs r ON r.job = $1 AND r.slot = s.slot
LEFT JOIN cronwright.dispatched d ON d.job = $1 AND d.slot = s.slot
ORDER BY s.slot
"""

#: A ledger row's status is the slot's status, whatever else is recorded about it.
_LEDGER = frozenset({"succeeded", "failed", "dead_lettered", "running", "paused"})
# A range of every-minute slots over a year is half a million: refuse beyond this.
MAX_SLOTS = 1_000_000


@dataclass(frozen=True)
class SlotStatus:
    job: Job
    slot: datetime
    status: str
    attempts: int

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job.name,
            "type": self.job.type,
            "slot": iso(self.slot),
            "status": self.status,
            "attempts": self.attempts,
        }


def due_slots(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The job's slots in ``[start, end)``; ConfigError past MAX_SLOTS."""
    out: list[datetime] = []
    t = schedule.next_after(start - timedelta(minutes=1))
    while t is not None and t < end:
        if len(out) == MAX_SLOTS:
            raise ConfigError(
                f"more than {MAX_SLOTS} slots between {iso(start)} and {iso(end)}",
                hint="narrow the range (or the job's catch_up.within_seconds)",
            )
        out.append(t)
        t = schedule.next_after(t)
    return out


def _status(row: dict[str, Any]) -> str:
    if row["status"] in _LEDGER:
        return str(row["status"])
    if row["paused"]:
        return "paused"
    return "queued" if row["dispatched"] else "missing"


async def statuses(db: Db, job: Job, slots: list[datetime]) -> list[SlotStatus]:
    """Each slot's status, in slot order: one query."""
    if not slots:
        return []
    async with db.transaction() as tx:
        rows = await tx.fetch(_STATUS, job.name, slots)
    return [SlotStatus(job, r["slot"], _status(r), int(r["attempts"])) for r in rows]
