"""The run ledger (``cronwright.runs``) and the dead letters (``cronwright.dead_letters``).

The ledger is keyed by (job, slot). A slot is claimed inside the job's own transaction,
so its ``succeeded`` row commits with the effect or not at all; a concurrent claim of
the same slot waits on the row lock and then sees the committed row.
"""

from __future__ import annotations

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


# One round trip: bound this transaction's waits by the job's timeout (lock_timeout
# applies within this statement, statement_timeout from the next one on), take the job's
# advisory lock when its runs must not overlap, then claim the slot. The CTEs are
# MATERIALIZED and chained so the settings precede the lock and the lock precedes the
# claim. A succeeded row is final: the WHERE leaves it alone and RETURNING yields nothing.
_CLAIM = """
WITH settings AS MATERIALIZED (
    SELECT set_config('statement_timeout', $6, true) AS st,
           set_config('lock_timeout', $6, true) AS lt
), guard AS MATERIALIZED (
    SELECT {lock} AS locked FROM settings
)
INSERT INTO cronwright.runs AS r (job, slot, status, attempt, message_id, started_at)
SELECT $1::text, $2::timestamptz, 'running', $3::integer, $4::text, $5::timestamptz
FROM guard
ON CONFLICT (job, slot) DO UPDATE
SET status = 'running', attempt = EXCLUDED.attempt, message_id = EXCLUDED.message_id,
    started_at = EXCLUDED.started_at, finished_at = NULL, rows = NULL,
    duration_ms = NULL, error_class = NULL, error = NULL
WHERE r.status <> 'succeeded'
RETURNING 1 AS claimed
"""
_CLAIM_LOCKED = _CLAIM.format(lock="pg_advisory_xact_lock(hashtextextended($7, 0))::text")
_CLAIM_UNLOCKED = _CLAIM.format(lock="NULL::text")

_SUCCEED = """
UPDATE cronwright.runs
SET status = 'succeeded', rows = $3, duration_ms = $4, finished_at = $5
WHERE job = $1 AND slot = $2
"""

_FAIL = """
INSERT INTO cronwright.runs AS r (job, slot, status, attempt, message_id, started_at,
                                  finished_at, duration_ms, error_class, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (job, slot) DO UPDATE
SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, message_id = EXCLUDED.message_id,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, rows = NULL,
    duration_ms = EXCLUDED.duration_ms, error_class = EXCLUDED.error_class,
    error = EXCLUDED.error
WHERE r.status <> 'succeeded'
"""

_DEAD_LETTER = """
INSERT INTO cronwright.dead_letters
    (job, type, slot, message_id, body, reason, error_class, attempts, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
    "started_at",
    "finished_at",
)


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
    timeout_seconds: int,
    lock: bool,
    timeout: float | None = None,
) -> bool:
    """Set the transaction's timeouts, take the job's lock if ``lock`` (serialising runs
    of the job until this transaction ends; works through PgBouncer), and claim the slot.
    False when the slot already succeeded: a duplicate."""
    args: list[Any] = [job, slot, attempt, message_id, started_at, f"{timeout_seconds * 1000}ms"]
    if lock:
        args.append(lock_key(job))
    sql = _CLAIM_LOCKED if lock else _CLAIM_UNLOCKED
    return await tx.fetchrow(sql, *args, timeout=timeout) is not None


async def succeed(
    tx: Tx, *, job: str, slot: datetime, rows: int, duration_ms: float, finished_at: datetime
) -> None:
    await tx.execute(_SUCCEED, job, slot, rows, duration_ms, finished_at)


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
        )


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    job: str | None
    type: str | None
    slot: datetime | None
    message_id: str
    body: str
    reason: str
    error_class: str
    attempts: int
    created_at: datetime


class DeadLetterSink(Protocol):
    async def put(self, letter: DeadLetter) -> None: ...


class PgDeadLetters:
    """Dead letters into ``cronwright.dead_letters``."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def put(self, letter: DeadLetter) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                _DEAD_LETTER,
                letter.job,
                letter.type,
                letter.slot,
                letter.message_id,
                letter.body,
                letter.reason,
                letter.error_class,
                letter.attempts,
                letter.created_at,
            )


async def runs(
    db: Db, *, job: str | None = None, failed_only: bool = False, limit: int = 50
) -> Sequence[dict[str, Any]]:
    """Ledger rows, newest slot first (``cronwright runs``)."""
    sql = f"""
    SELECT {", ".join(RUN_COLUMNS)} FROM cronwright.runs
    WHERE ($1::text IS NULL OR job = $1)
      AND (NOT $2 OR status IN ('failed', 'dead_lettered'))
    ORDER BY slot DESC, job
    LIMIT $3
    """
    async with db.transaction() as tx:
        return await tx.fetch(sql, job, failed_only, limit)
