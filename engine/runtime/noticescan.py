"""The notifier's scan: what happened since the last pass, turned into notices in the
outbox, by one process at a time.

A pass takes a transaction-scoped advisory lock (another process's pass in progress: this
one is skipped), reads the dead letters and the run history written since the last pass,
asks :func:`engine.runtime.incidents.plan` what to tell, records the notices and the jobs'
incidents, and moves the cursors, all in one transaction: each row is read by exactly one
pass, and an event is recorded with the cursor that passed it or not at all. The
executor's path is untouched: it writes its dead letters and history as before.

Rows are read by id up to a **horizon** taken at least :data:`SETTLE_SECONDS` before: a
transaction that drew a lower id (its row still invisible when a higher one was seen) has
committed by then. A cursor that no pass moved for :data:`STALE_SECONDS` (no notifier ran:
a database from before notifications, or every service stopped) starts again from the
newest row: history that old is not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.core.model import Manifest
from engine.core.queries import query
from engine.runtime import incidents, outbox
from engine.runtime.incidents import JobState
from engine.runtime.notices import Letter, Run
from engine.runtime.ports import Db, Tx

log = logging.getLogger(__name__)

#: A horizon is read this long after it was taken.
SETTLE_SECONDS = 5.0
#: A cursor no pass moved for this long starts again at the newest row.
STALE_SECONDS = 3600.0
#: Rows read per source per pass, at most.
BATCH = 2000


@dataclass(frozen=True)
class Scanned:
    """What a pass read and recorded (None: another process held the pass)."""

    letters: int
    runs: int
    notices: int
    skipped: int  # rows passed over by a stale cursor


async def scan(
    db: Db,
    manifest: Manifest,
    *,
    missing: Mapping[str, Sequence[datetime]],
    grace: timedelta,
    batch: int = BATCH,
    settle_seconds: float = SETTLE_SECONDS,
) -> Scanned | None:
    """One pass. ``missing``: each job's missing slots to tell (see
    :func:`engine.runtime.incidents.to_tell`)."""
    async with db.transaction() as tx:
        row = await tx.fetchrow(query("notifications.scan_lock"))
        if row is None or not row["locked"]:
            return None
        cursors = await tx.fetch(query("notifications.cursors"), settle_seconds, STALE_SECONDS)
        read: dict[str, list[dict[str, Any]]] = {"dead_letters": [], "run_history": []}
        skipped = 0
        for c in cursors:
            source = c["source"]
            if c["stale"]:
                skipped += await _restart(tx, source, c["last_id"])
            elif c["settled"]:
                read[source] = await _read(tx, source, c["last_id"], c["horizon_id"], batch)
        letters = [_letter(r) for r in read["dead_letters"]]
        runs = [_run(r) for r in read["run_history"]]
        jobs = [j.name for j in incidents.notified(manifest)]
        states = {
            r["job"]: JobState(
                incidents=r["incidents"],
                open_since=r["open_since"],
                open_kinds=frozenset(r["open_kinds"]),
                problem_slot=r["problem_slot"],
            )
            for r in await tx.fetch(query("notifications.states"), jobs)
        }
        plan = incidents.plan(
            manifest, letters=letters, runs=runs, missing=missing, states=states, grace=grace
        )
        await outbox.record(tx, plan.notices)
        if plan.states:
            await _save(tx, plan.states)
    if skipped:
        log.warning(
            "notifications start from now: %d earlier dead letters and runs were written"
            " while no notifier ran, and are not sent",
            skipped,
        )
    return Scanned(len(letters), len(runs), len(plan.notices), skipped)


async def _newest(tx: Tx, source: str, at_least: int) -> int:
    row = await tx.fetchrow(query("notifications.newest"), source)
    newest = row["newest"] if row is not None else None
    return max(at_least, newest or 0)


async def _restart(tx: Tx, source: str, last: int) -> int:
    """Move a stale cursor to the newest row; how many rows it passed over."""
    newest = await _newest(tx, source, last)
    await tx.execute(query("notifications.advance"), source, newest, newest, True)
    return newest - last


async def _read(tx: Tx, source: str, last: int, horizon: int, batch: int) -> list[dict[str, Any]]:
    """The rows in (last, horizon], at most ``batch``; the cursor moves past them, and to a
    new horizon once it reaches this one."""
    sql = (
        query("notifications.letters") if source == "dead_letters" else query("notifications.runs")
    )
    rows = await tx.fetch(sql, last, horizon, batch) if horizon > last else []
    if len(rows) == batch:  # more before the horizon: the next pass goes on from here
        key = "id" if source == "dead_letters" else "run_id"
        await tx.execute(query("notifications.advance"), source, rows[-1][key], horizon, False)
    else:
        newest = await _newest(tx, source, horizon)
        await tx.execute(query("notifications.advance"), source, horizon, newest, True)
    return rows


def _letter(r: Mapping[str, Any]) -> Letter:
    return Letter(
        id=r["id"],
        job=r["job"],
        type=r["type"],
        slot=r["slot"],
        reason=r["reason"],
        error_class=r["error_class"],
        attempts=r["attempts"],
    )


def _run(r: Mapping[str, Any]) -> Run:
    return Run(
        run_id=r["run_id"],
        job=r["job"],
        slot=r["slot"],
        status=r["status"],
        attempt=r["attempt"],
        duration_ms=r["duration_ms"],
    )


async def _save(tx: Tx, states: Mapping[str, JobState]) -> None:
    names = sorted(states)
    await tx.execute(
        query("notifications.save_states"),
        names,
        [states[n].incidents for n in names],
        [states[n].open_since for n in names],
        [",".join(sorted(states[n].open_kinds)) for n in names],
        [states[n].problem_slot for n in names],
    )
