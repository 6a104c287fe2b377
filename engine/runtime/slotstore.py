"""The scheduling core's questions (:class:`engine.runtime.ports.SlotStore`) answered by
cronwright's tables: ``jobs`` (history starts), ``runs`` (the ledger), ``dispatched``
(what cronwright sent) and ``pauses``. Each answer is one statement, whatever the number
of jobs and slots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from engine.runtime.ports import Db, SlotFacts, SlotStore

_REGISTER = """
WITH added AS (
    INSERT INTO cronwright.jobs (job, first_seen)
    SELECT j, $2 FROM unnest($1::text[]) AS j
    ON CONFLICT (job) DO NOTHING
    RETURNING job, first_seen
)
SELECT job, first_seen FROM added
UNION ALL
SELECT job, first_seen FROM cronwright.jobs WHERE job = ANY($1::text[])
"""
_FIRST_SEEN = "SELECT job, first_seen FROM cronwright.jobs WHERE job = ANY($1::text[])"
# One row per asked (job, slot), in order. The newer-slot question is asked only for the
# pairs that want it (a `latest` job's), so other jobs pay nothing for it.
_FACTS = """
SELECT r.status AS ledger, coalesce(r.attempt, 0) AS attempts,
       d.job IS NOT NULL AS dispatched,
       EXISTS (
           SELECT 1 FROM cronwright.pauses AS p
           WHERE p.job = w.job AND p.paused_from <= w.slot
             AND (p.resumed_at IS NULL OR w.slot < p.resumed_at)
       ) AS paused,
       w.latest AND (
           EXISTS (SELECT 1 FROM cronwright.runs AS n
                   WHERE n.job = w.job AND n.slot > w.slot
                     AND n.status NOT IN ('paused', 'superseded'))
           OR EXISTS (SELECT 1 FROM cronwright.dispatched AS n
                      WHERE n.job = w.job AND n.slot > w.slot)
       ) AS newer_active
FROM unnest($1::text[], $2::timestamptz[], $3::boolean[]) WITH ORDINALITY AS w(job, slot, latest, i)
LEFT JOIN cronwright.runs AS r ON r.job = w.job AND r.slot = w.slot
LEFT JOIN cronwright.dispatched AS d ON d.job = w.job AND d.slot = w.slot
ORDER BY w.i
"""


class PgSlotStore(SlotStore):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def register(self, jobs: Sequence[str], at: datetime) -> Mapping[str, datetime]:
        async with self._db.transaction() as tx:
            rows = await tx.fetch(_REGISTER, list(jobs), at)
        return {r["job"]: r["first_seen"] for r in rows}

    async def first_seen(self, jobs: Sequence[str]) -> Mapping[str, datetime]:
        async with self._db.transaction() as tx:
            rows = await tx.fetch(_FIRST_SEEN, list(jobs))
        return {r["job"]: r["first_seen"] for r in rows}

    async def facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> list[SlotFacts]:
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                _FACTS, [j for j, _ in pairs], [t for _, t in pairs], list(latest)
            )
        return [
            SlotFacts(
                ledger=r["ledger"],
                attempts=int(r["attempts"]),
                dispatched=r["dispatched"],
                paused=r["paused"],
                newer_active=r["newer_active"],
            )
            for r in rows
        ]
