"""The scheduling core's questions (:class:`engine.runtime.ports.SlotStore`) answered by
cronwright's tables: ``jobs`` (history starts), ``runs`` (the ledger), ``dispatched``
(what cronwright sent) and ``pauses``. Each answer is one statement, whatever the number
of jobs and slots; the open slots' facts two when any slot has no record. The facts of
jobs and slots are one statement (``scheduling.facts``) for every question that asks
them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from engine.core.queries import query
from engine.runtime.ports import Db, JobFacts, SlotFacts, SlotStore, Tx


class PgSlotStore(SlotStore):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def register(self, jobs: Sequence[str], at: datetime) -> Mapping[str, datetime]:
        async with self._db.transaction() as tx:
            rows = await tx.fetch(query("scheduling.register"), list(jobs), at)
        return {r["job"]: r["first_seen"] for r in rows}

    async def first_seen(self, jobs: Sequence[str]) -> Mapping[str, datetime]:
        async with self._db.transaction() as tx:
            rows = await tx.fetch(query("scheduling.first_seen"), list(jobs))
        return {r["job"]: r["first_seen"] for r in rows}

    async def facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> list[SlotFacts]:
        async with self._db.transaction() as tx:
            return (await _facts(tx, [], pairs, latest))[1]

    async def jobs_and_facts(
        self, jobs: Sequence[str], pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> tuple[dict[str, JobFacts], list[SlotFacts]]:
        async with self._db.transaction() as tx:
            return await _facts(tx, jobs, pairs, latest)

    async def open_facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> dict[int, SlotFacts]:
        async with self._db.transaction() as tx:
            index: dict[datetime, int] = {}  # each distinct slot's place in the array, from 1
            places = [index.setdefault(t, len(index) + 1) for _, t in pairs]
            rows = await tx.fetch(
                query("scheduling.unrecorded"), [j for j, _ in pairs], places, list(index)
            )
            found = [r["i"] - 1 for r in rows]
            if not found:
                return {}
            _, facts = await _facts(tx, [], [pairs[i] for i in found], [latest[i] for i in found])
        return dict(zip(found, facts, strict=True))


async def _facts(
    tx: Tx, jobs: Sequence[str], pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
) -> tuple[dict[str, JobFacts], list[SlotFacts]]:
    """The facts of each of ``jobs`` (those of a job never seen are empty), and of each
    pair in order."""
    rows = await tx.fetch(
        query("scheduling.facts"),
        list(dict.fromkeys(jobs)),
        [j for j, _ in pairs],
        [t for _, t in pairs],
        list(latest),
    )
    about: dict[str, JobFacts] = {}
    facts: list[SlotFacts] = []
    for r in rows:
        if r["i"] is None:  # a job's row (they come first)
            about[r["job"]] = JobFacts(first_seen=r["first_seen"], paused_since=r["paused_since"])
        else:
            facts.append(
                SlotFacts(
                    ledger=r["ledger"],
                    attempts=int(r["attempts"]),
                    dispatched=r["dispatched"],
                    paused=r["paused"],
                    newer_active=r["newer_active"],
                )
            )
    return about, facts
