"""The run ledger (``cronwright.runs``) and the dead letters (``cronwright.dead_letters``).

The ledger is keyed by (job, slot): each slot's current run. A slot is claimed inside
the job's own transaction, so its ``succeeded`` row commits with the effect or not at
all; a concurrent claim of the same slot waits on the slot's lock (an advisory lock held
until the claiming transaction ends) and then sees the committed row. The claim writes
nothing; the slot's row is written once, with the outcome. Every finished attempt is
also kept in ``cronwright.run_history``; the one whose ``run_id`` the slot's row holds
is current. A rerun request (``rerun_id``) claims a succeeded slot once: its concurrent
twin waits, then finds the request done.

A SQL job's whole transaction is one round trip (``engine.runtime.transaction``: one
call of cronwright.run_slot, migration 0007, which uses the functions below). A job with
an action runs in a transaction of its own: the claim shares its round trip with BEGIN,
and the success (with the queue's ack) its round trip with COMMIT (the functions are in
migration 0006).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.core.queries import query
from engine.runtime.deadline import whole_ms
from engine.runtime.ports import Db, Tx

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
    final: str | None  # "paused" or "superseded": recorded, and not to be run


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
    supersede: bool = False,
    timeout: float | None = None,
) -> Claim | None:
    """Set the transaction's timeouts (``timeout_seconds``: what is left of the run's
    deadline), take the job's lock if ``lock`` (serialising runs of the job until this
    transaction ends; works through PgBouncer), and claim the slot, in the round trip
    that opens the transaction. None when the slot already succeeded (and ``rerun_id``
    is None or was seen already): a duplicate. A claim with ``final`` set must not run
    (commit the transaction to record it): ``paused``, the slot lies inside a runtime
    pause; ``superseded`` (asked with ``supersede``, for a ``latest`` job), a newer slot
    of the job succeeded."""
    ms = whole_ms(timeout_seconds)
    answer = await tx.execute_inlined(
        query("ledger.claim"),
        job,
        slot,
        attempt,
        message_id,
        started_at,
        f"{ms}ms",
        rerun_id,
        lock_key(job) if lock else None,
        supersede,
        timeout=timeout,
    )
    if answer == 0:
        return None
    return Claim(final={1: None, 2: "paused"}.get(answer, "superseded"))


@dataclass(frozen=True)
class Ack:
    """A queue's acknowledgement of the delivery, to commit with the slot's final ledger
    row: one statement of the queue's own, its parameters ``$1``..``$n`` being ``args``.
    It is sent with COMMIT, after the success (no round trip of its own).

    ``queue_row`` is set when the ack is the local queue's (``cronwright.queue``): the
    (id, lease_id) whose row it deletes. In a one-round-trip run, cronwright.run_slot
    deletes it with a statement of its own, whose plan it keeps, instead of parsing and
    planning ``sql`` on every call."""

    sql: str
    args: tuple[Any, ...]
    queue_row: tuple[int, Any] | None = None


def succeed(
    tx: Tx,
    *,
    job: str,
    slot: datetime,
    attempt: int,
    message_id: str,
    started_at: datetime,
    rows: int,
    duration_ms: float,
    finished_at: datetime,
    rerun_id: str | None = None,
    ack: Ack | None = None,
) -> None:
    """Record the claimed slot as succeeded (its current run), then ``ack``, both sent
    with COMMIT: an error in either rolls the whole transaction back and is raised at its
    end."""
    tx.at_commit(
        query("ledger.succeed"),
        job,
        slot,
        attempt,
        message_id,
        started_at,
        rerun_id,
        rows,
        duration_ms,
        finished_at,
    )
    if ack is not None:
        acknowledge(tx, ack)


def acknowledge(tx: Tx, ack: Ack) -> None:
    """``ack`` alone, with COMMIT, for a final outcome without a success (duplicate,
    paused, superseded)."""
    tx.at_commit(ack.sql, *ack.args)


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
            query("ledger.fail"),
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
    slot: datetime | None = None,
) -> Sequence[dict[str, Any]]:
    """Ledger rows, newest slot first (``cronwright runs``): each slot's current run, or
    with ``history`` every finished attempt plus the runs in progress, ``current``
    marking the one each slot's row holds; ``slot``: that slot's only (the console)."""
    sql = query("ledger.history") if history else query("ledger.runs")
    async with db.transaction() as tx:
        return await tx.fetch(sql, job, failed_only, limit, slot)
