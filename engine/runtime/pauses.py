"""Runtime pauses (``cronwright pause`` / ``resume``), kept with their history in
``cronwright.pauses``. The manifest's ``paused: true`` is the deploy-time default; these
rows are the operator's switch. A slot inside a pause is skipped for good: never run and
never caught up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.core.queries import query
from engine.runtime.ports import Tx


@dataclass(frozen=True)
class Pause:
    job: str
    paused_from: datetime
    resumed_at: datetime | None
    reason: str | None


def _row(r: dict[str, object]) -> Pause:
    return Pause(r["job"], r["paused_from"], r["resumed_at"], r["reason"])  # type: ignore[arg-type]


async def pause(tx: Tx, job: str, at: datetime, reason: str | None) -> tuple[Pause, bool]:
    """Pause ``job`` from ``at`` on. Returns the open pause and whether this call opened
    it (False: the job was already paused, and that pause is kept as it is)."""
    while True:
        row = await tx.fetchrow(query("pauses.pause"), job, at, reason)
        if row is not None:
            return _row(row), True
        existing = (await open_pauses(tx, [job])).get(job)
        if existing is not None:  # else it was resumed in between: try again
            return existing, False


async def resume(tx: Tx, job: str, at: datetime) -> Pause | None:
    """End ``job``'s open pause at ``at``; None when it was not paused."""
    row = await tx.fetchrow(query("pauses.resume"), job, at)
    return _row(row) if row is not None else None


async def open_pauses(tx: Tx, jobs: list[str]) -> dict[str, Pause]:
    """The open pause of each job that has one."""
    return {r["job"]: _row(r) for r in await tx.fetch(query("pauses.open"), jobs)}
