"""Retention: how long finished history is kept (``cronwright prune``, and daily from
``serve`` and ``consume``).

Run history older than ``runs_days`` is deleted, except each slot's current run (the
one ``cronwright.runs`` points at: it is what makes a redelivery a duplicate). Dead
letters are deleted ``dead_letters_days`` after they were replayed or purged; a
pending one is kept however old. Notifications sent or given up go with the run history,
after ``runs_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.model import Manifest
from engine.core.queries import query
from engine.runtime.ports import Db


@dataclass(frozen=True)
class Pruned:
    runs: int
    dead_letters: int
    notifications: int = 0


async def prune(
    db: Db,
    manifest: Manifest,
    now: datetime,
    *,
    runs_days: int | None = None,
    dead_letters_days: int | None = None,
) -> Pruned:
    """Delete what the manifest's ``retention`` (or the given days) no longer keeps."""
    keep = manifest.retention
    runs_cutoff = now - timedelta(days=keep.runs_days if runs_days is None else runs_days)
    letters_days = keep.dead_letters_days if dead_letters_days is None else dead_letters_days
    async with db.transaction() as tx:
        runs = await tx.execute(query("retention.runs"), runs_cutoff)
        letters = await tx.execute(
            query("retention.dead_letters"), now - timedelta(days=letters_days)
        )
        told = await tx.execute(query("retention.notifications"), runs_cutoff)
    return Pruned(runs=runs, dead_letters=letters, notifications=told)
