"""The run ledger (``cronwright.runs``) and the dead letters (``cronwright.dead_letters``).

The ledger is keyed by (job, slot): each slot's current run. A slot is claimed inside
the job's own transaction, so its ``succeeded`` row commits with the effect or not at
all; a concurrent claim of the same slot waits on the row lock and then sees the
committed row. Every finished attempt is also kept in ``cronwright.run_history``; the
one whose ``run_id`` the slot's row holds is current. A rerun request (``rerun_id``)
claims a succeeded slot once: its concurrent twin waits, then finds the request done.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Tx(Protocol):
    """One transaction (``engine.adapters.pg.Tx``)."""

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int: ...

    async def fetch(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> list[dict[str, Any]]: ...

    async def fetchrow(
        self, sql: str, *args: Any, timeout: float | None = None
    ) -> dict[str, Any] | None: ...


class Db(Protocol):
    """A source of transactions (``engine.adapters.pg.Database``)."""

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...


# One round trip: bound this transaction's waits by the run's remaining time
# (lock_timeout applies within this statement, statement_timeout from the next one on),
# look up a runtime pause covering the slot, take the job's advisory lock when its runs
# must not overlap (not for a paused slot), then claim the slot: 'running', or 'paused'
# (final at once, and kept in the history). The CTEs are MATERIALIZED and chained so the
# settings precede the lock and the lock precedes the claim. A succeeded row is final,
# except to a rerun request it has not seen yet ($7): the WHERE leaves it alone and
# RETURNING yields nothing, a duplicate.
_CLAIM = """
WITH settings AS MATERIALIZED (
    SELECT set_config('statement_timeout', $6, true) AS st,
           set_config('lock_timeout', $6, true) AS lt
), paused AS MATERIALIZED (
    SELECT EXISTS (
        SELECT 1 FROM cronwright.pauses AS p
        WHERE p.job = $1 AND p.paused_from <= $2
          AND (p.resumed_at IS NULL OR p.resumed_at > $2)
    ) AS paused FROM settings
), guard AS MATERIALIZED (
    SELECT paused, CASE WHEN NOT paused THEN {lock} END AS locked FROM paused
), claimed AS (
    INSERT INTO cronwright.runs AS r
        (job, slot, status, attempt, message_id, started_at, finished_at, run_id, rerun_id)
    SELECT $1::text, $2::timestamptz, CASE WHEN paused THEN 'paused' ELSE 'running' END,
           $3::integer, $4::text, $5::timestamptz,
           CASE WHEN paused THEN $5::timestamptz END, nextval('cronwright.run_ids'), $7::text
    FROM guard
    ON CONFLICT (job, slot) DO UPDATE
    SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, message_id = EXCLUDED.message_id,
        started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, rows = NULL,
        duration_ms = NULL, error_class = NULL, error = NULL, run_id = EXCLUDED.run_id,
        rerun_id = EXCLUDED.rerun_id
    WHERE r.status <> 'succeeded'
       OR (EXCLUDED.rerun_id IS NOT NULL AND EXCLUDED.status = 'running'
           AND r.rerun_id IS DISTINCT FROM EXCLUDED.rerun_id)
    RETURNING r.run_id, r.status
), history AS (
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, message_id, rerun_id, started_at, finished_at,
         duration_ms)
    SELECT run_id, $1, $2, status, $3, $4, $7, $5, $5, 0 FROM claimed WHERE status = 'paused'
)
SELECT run_id, status FROM claimed
"""
_CLAIM_LOCKED = _CLAIM.format(lock="pg_advisory_xact_lock(hashtextextended($8, 0))::text")
_CLAIM_UNLOCKED = _CLAIM.format(lock="NULL::text")

_HISTORY_COLUMNS = """run_id, job, slot, status, attempt, rows, duration_ms, error_class, error,
    message_id, rerun_id, started_at, finished_at"""

# The success and its history row, in the job's transaction, with a queue's ack as
# one more CTE: one round trip.
_SUCCEED = f"""
WITH done AS (
    UPDATE cronwright.runs
    SET status = 'succeeded', rows = $3, duration_ms = $4, finished_at = $5
    WHERE job = $1 AND slot = $2
    RETURNING {_HISTORY_COLUMNS}
){{ack}}
INSERT INTO cronwright.run_history ({_HISTORY_COLUMNS})
SELECT {_HISTORY_COLUMNS} FROM done
"""
_SUCCEED_ARGS = 5
_PARAM = re.compile(r"\$(\d+)")

# The failed attempt always goes into the history; it becomes the current run unless
# the slot already succeeded (a failed rerun leaves the earlier success current).
_FAIL = f"""
WITH attempt AS (
    INSERT INTO cronwright.run_history
        (run_id, job, slot, status, attempt, message_id, started_at, finished_at,
         duration_ms, error_class, error, rerun_id)
    VALUES (nextval('cronwright.run_ids'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    RETURNING {_HISTORY_COLUMNS}
)
INSERT INTO cronwright.runs AS r ({_HISTORY_COLUMNS})
SELECT {_HISTORY_COLUMNS} FROM attempt
ON CONFLICT (job, slot) DO UPDATE
SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, message_id = EXCLUDED.message_id,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, rows = NULL,
    duration_ms = EXCLUDED.duration_ms, error_class = EXCLUDED.error_class,
    error = EXCLUDED.error, run_id = EXCLUDED.run_id, rerun_id = EXCLUDED.rerun_id
WHERE r.status <> 'succeeded'
"""

RUN_COLUMNS = (
    "job",
    "slot",
    "status",
    "attempt",
    "rows",
    "duration_ms",
    "error_class",
    "error",
    "message_id",
    "rerun_id",
    "started_at",
    "finished_at",
)


@dataclass(frozen=True)
class Claim:
    run_id: int
    paused: bool


def lock_key(job: str) -> str:
    return f"cronwright:job:{job}"


async def claim(
    tx: Tx,
    *,
    job: str,
    slot: datetime,
    attempt: int,
    message_id: str,
    started_at: datetime,
    timeout_seconds: float,
    lock: bool,
    rerun_id: str | None = None,
    timeout: float | None = None,
) -> Claim | None:
    """Set the transaction's timeouts (``timeout_seconds``: what is left of the run's
    deadline), take the job's lock if ``lock`` (serialising runs of the job until this
    transaction ends; works through PgBouncer), and claim the slot. None when the slot
    already succeeded (and ``rerun_id`` is None or was seen already): a duplicate. A
    claim with ``paused`` set is final: the slot lies inside a runtime pause and must
    not run (commit the transaction to record it)."""
    ms = max(1, math.ceil(timeout_seconds * 1000))
    args: list[Any] = [job, slot, attempt, message_id, started_at, f"{ms}ms", rerun_id]
    if lock:
        args.append(lock_key(job))
    sql = _CLAIM_LOCKED if lock else _CLAIM_UNLOCKED
    row = await tx.fetchrow(sql, *args, timeout=timeout)
    if row is None:
        return None
    return Claim(run_id=int(row["run_id"]), paused=row["status"] == "paused")


@dataclass(frozen=True)
class Ack:
    """A queue's acknowledgement of the delivery, to commit with the slot's final ledger
    row: one DELETE or UPDATE without WITH or RETURNING, its parameters ``$1``..``$n``
    being ``args`` (renumbered after the ledger's own, so no other ``$`` in ``sql``).
    It runs as a CTE of the success (no round trip of its own), or on its own for a
    duplicate or paused slot."""

    sql: str
    args: tuple[Any, ...]


@functools.lru_cache(maxsize=16)
def _succeed_sql(ack_sql: str | None) -> str:
    if ack_sql is None:
        return _SUCCEED.format(ack="")
    shifted = _PARAM.sub(lambda m: f"${int(m[1]) + _SUCCEED_ARGS}", ack_sql)
    return _SUCCEED.format(ack=f", ack AS (\n    {shifted}\n)")


async def succeed(
    tx: Tx,
    *,
    job: str,
    slot: datetime,
    rows: int,
    duration_ms: float,
    finished_at: datetime,
    ack: Ack | None = None,
) -> None:
    """Mark the claimed slot succeeded, and run ``ack`` in the same statement."""
    sql = _succeed_sql(ack.sql if ack else None)
    args = ack.args if ack else ()
    await tx.execute(sql, job, slot, rows, duration_ms, finished_at, *args)


async def acknowledge(tx: Tx, ack: Ack) -> None:
    """``ack`` alone, for a final outcome without a success (duplicate, paused)."""
    await tx.execute(ack.sql, *ack.args)


@dataclass(frozen=True, kw_only=True)
class Failure:
    job: str
    slot: datetime
    status: str  # 'failed' (will be retried) or 'dead_lettered'
    attempt: int
    message_id: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    error_class: str
    error: str
    rerun_id: str | None = None


async def record_failure(db: Db, f: Failure) -> None:
    """In its own transaction, after the job's rolled back. Never overwrites a success."""
    async with db.transaction() as tx:
        await tx.execute(
            _FAIL,
            f.job,
            f.slot,
            f.status,
            f.attempt,
            f.message_id,
            f.started_at,
            f.finished_at,
            f.duration_ms,
            f.error_class,
            f.error,
            f.rerun_id,
        )


async def runs(
    db: Db,
    *,
    job: str | None = None,
    failed_only: bool = False,
    limit: int = 50,
    history: bool = False,
) -> Sequence[dict[str, Any]]:
    """Ledger rows, newest slot first (``cronwright runs``): each slot's current run, or
    with ``history`` every finished attempt plus the runs in progress, ``current``
    marking the one each slot's row holds."""
    failed = "status IN ('failed', 'dead_lettered')"
    if not history:
        sql = f"""
        SELECT {", ".join(RUN_COLUMNS)}, true AS current FROM cronwright.runs
        WHERE ($1::text IS NULL OR job = $1) AND (NOT $2 OR {failed})
        ORDER BY slot DESC, job
        LIMIT $3
        """
    else:
        cols = ", ".join(f"h.{c}" for c in RUN_COLUMNS)
        sql = f"""
        SELECT * FROM (
            SELECT {cols}, h.run_id, h.run_id = r.run_id IS TRUE AS current
            FROM cronwright.run_history AS h
            LEFT JOIN cronwright.runs AS r ON (r.job, r.slot) = (h.job, h.slot)
            UNION ALL
            SELECT {", ".join(RUN_COLUMNS)}, run_id, true FROM cronwright.runs
            WHERE status = 'running'
        ) AS h
        WHERE ($1::text IS NULL OR job = $1) AND (NOT $2 OR {failed})
        ORDER BY slot DESC, job, run_id DESC
        LIMIT $3
        """
    async with db.transaction() as tx:
        return await tx.fetch(sql, job, failed_only, limit)
