"""Retention: how long finished history is kept (``cronwright prune``, and daily from
``serve`` and ``consume``).

Run history older than ``runs_days`` is deleted, except each slot's current run (the
one ``cronwright.runs`` points at: it is what makes a redelivery a duplicate). Dead
letters are deleted ``dead_letters_days`` after they were replayed or purged; a
pending one is kept however old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.model import Manifest
from engine.runtime.ports import Db

_RUNS = """
DELETE FROM cronwright.run_history AS h
WHERE h.finished_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM cronwright.runs AS r
      WHERE r.job = h.job AND r.slot = h.slot AND r.run_id = h.run_id
  )
"""

_DEAD_LETTERS = """
DELETE FROM cronwright.dead_letters
WHERE coalesce(replayed_at, purged_at) < $1
"""


@dataclass(frozen=True)
class Pruned:
    runs: int
    dead_letters: int


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
        runs = await tx.execute(_RUNS, runs_cutoff)
        letters = await tx.execute(_DEAD_LETTERS, now - timedelta(days=letters_days))
    return Pruned(runs=runs, dead_letters=letters)
