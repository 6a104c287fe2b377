"""Runtime pauses (``cronwright pause`` / ``resume``), kept with their history in
``cronwright.pauses``. The manifest's ``paused: true`` is the deploy-time default; these
rows are the operator's switch. A slot inside a pause is skipped for good: never run and
never caught up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.core.queries import query
from engine.runtime.ports import Tx


@dataclass(frozen=True)
class Pause:
    job: str
    paused_from: datetime
    resumed_at: datetime | None
    reason: str | None
    paused_by: str | None = None  # who opened it: cli:USER, ui:NAME (None: unrecorded)
    resumed_by: str | None = None


def _row(r: dict[str, Any]) -> Pause:
    return Pause(
        r["job"], r["paused_from"], r["resumed_at"], r["reason"], r["paused_by"], r["resumed_by"]
    )


async def pause(
    tx: Tx, job: str, at: datetime, reason: str | None, *, by: str | None = None
) -> tuple[Pause, bool]:
    """Pause ``job`` from ``at`` on, ``by`` an operator. Returns the open pause and
    whether this call opened it (False: the job was already paused, and that pause is
    kept as it is)."""
    while True:
        row = await tx.fetchrow(query("pauses.pause"), job, at, reason, by)
        if row is not None:
            return _row(row), True
        existing = (await open_pauses(tx, [job])).get(job)
        if existing is not None:  # else it was resumed in between: try again
            return existing, False


async def resume(tx: Tx, job: str, at: datetime, *, by: str | None = None) -> Pause | None:
    """End ``job``'s open pause at ``at``, ``by`` an operator; None when it was not
    paused."""
    row = await tx.fetchrow(query("pauses.resume"), job, at, by)
    return _row(row) if row is not None else None


async def open_pauses(tx: Tx, jobs: list[str]) -> dict[str, Pause]:
    """The open pause of each job that has one."""
    return {r["job"]: _row(r) for r in await tx.fetch(query("pauses.open"), jobs)}


async def history(tx: Tx, job: str, *, limit: int) -> list[Pause]:
    """``job``'s pauses, newest first, at most ``limit``."""
    return [_row(r) for r in await tx.fetch(query("pauses.history"), job, limit)]
