"""One attempt's transaction: claim the slot, run the job, record the success and run the
queue's ack, all committed together or not at all, within the run's deadline.

A SQL job's whole transaction is one round trip: one call of cronwright.run_slot
(migration 0007) with the statements' values written in as SQL literals. A job with an
action (Python between the query and the success, or a python action's function), or
with a value that has no SQL literal (a list parameter, say), runs a transaction of three
round trips instead: the claim rides with BEGIN, the job's work (its :data:`Step`) runs,
and the success and the ack ride with COMMIT.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from engine.core.errors import DatabaseError
from engine.core.model import CatchUpPolicy, Job, Overlap
from engine.core.queries import query
from engine.core.times import Clock
from engine.runtime import ledger
from engine.runtime.deadline import CLIENT_TIMEOUT_MARGIN, SLACK, Deadline, whole_ms
from engine.runtime.ledger import Ack
from engine.runtime.ports import Db, Tx
from engine.sql.sqltemplates import Rendered

Action = Callable[[Sequence[Mapping[str, Any]], datetime], Awaitable[int]]
#: A job's work inside its transaction, between the claim and the success: the rows it
#: touched.
Step = Callable[[Tx], Awaitable[int]]
Result = int | Literal["duplicate", "paused", "superseded"]


# cronwright.run_slot's answers other than a row count.
_ANSWERS: dict[int, Result] = {-1: "duplicate", -2: "paused", -3: "superseded"}


def _supersedes(job: Job) -> bool:
    """A `latest` job never runs a slot older than one that succeeded."""
    return job.catch_up.policy is CatchUpPolicy.LATEST


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """What identifies one attempt in the ledger."""

    job: Job
    slot: datetime
    attempt: int
    message_id: str
    started_at: datetime
    rerun_id: str | None = None
    ack: Ack | None = None


async def run(
    db: Db,
    a: Attempt,
    statements: Sequence[Rendered],
    action: Action | None,
    deadline: Deadline,
    clock: Clock,
) -> Result:
    """The attempt's transaction. Returns the rows affected, or ``duplicate``, or
    ``paused`` (the slot lies inside a runtime pause) or ``superseded`` (a newer slot of
    a ``latest`` job succeeded): recorded, not run."""
    inlined = _inlined(db, statements) if action is None else None
    if inlined is not None:
        return await _in_one_round_trip(db, a, inlined, deadline, clock)
    step = _statements(statements, action, a.slot, deadline)
    return await in_a_transaction(db, a, step, deadline, clock)


def _inlined(db: Db, statements: Sequence[Rendered]) -> list[str] | None:
    """The statements with their values written in; None when a value has no literal
    form: then they run with binds."""
    try:
        return [db.inline(st.sql, st.args) for st in statements]
    except DatabaseError:
        return None


async def _in_one_round_trip(
    db: Db, a: Attempt, statements: Sequence[str], deadline: Deadline, clock: Clock
) -> Result:
    """Claim (as ``ledger.claim``), run ``statements``, record the success (the rows they
    affected; finished at the clock's now plus the time the run took on the server) and
    run the ack, for a duplicate and a paused slot too. The time left bounds it all on
    the server (its statement_timeout may exceed it by ``SLACK``)."""
    left = deadline.left()
    ms = whole_ms(left)
    ack = a.ack
    queue_row = ack.queue_row if ack is not None else None
    answer = await db.call_bounded(
        query("ledger.run_slot"),
        a.job.name,
        a.slot,
        a.attempt,
        a.message_id,
        a.started_at,
        ms,
        math.floor(SLACK * 1000),
        a.rerun_id,
        ledger.lock_key(a.job.name) if a.job.overlap is Overlap.FORBID else None,
        list(statements),
        db.inline(ack.sql, ack.args) if ack is not None and queue_row is None else None,
        clock(),
        *(queue_row or (None, None)),
        _supersedes(a.job),
        statement_timeout_ms=ms,
        timeout=left + CLIENT_TIMEOUT_MARGIN,
    )
    return _ANSWERS.get(answer) or int(answer)


def _statements(
    statements: Sequence[Rendered], action: Action | None, slot: datetime, deadline: Deadline
) -> Step:
    """A SQL job's statements run with binds, or a built-in action's query and the action
    on the rows it selected."""

    async def step(tx: Tx) -> int:
        if action is None:
            rows = 0
            for st in statements:
                timeout = await deadline.bound_statement(tx)
                rows += await tx.execute(st.sql, *st.args, timeout=timeout)
            return rows
        selected: list[dict[str, Any]] = []
        for st in statements:
            timeout = await deadline.bound_statement(tx)
            selected = await tx.fetch(st.sql, *st.args, timeout=timeout)
        return await deadline.bound(lambda: action(selected, slot))

    return step


async def in_a_transaction(
    db: Db, a: Attempt, step: Step, deadline: Deadline, clock: Clock
) -> Result:
    """The attempt in a transaction of three round trips: the claim with BEGIN, ``step``,
    then the success and the ack with COMMIT. Returns as :func:`run`."""
    t0 = time.perf_counter()
    async with db.transaction() as tx:
        left = deadline.left()
        claimed = await ledger.claim(
            tx,
            job=a.job.name,
            slot=a.slot,
            attempt=a.attempt,
            message_id=a.message_id,
            started_at=a.started_at,
            timeout_seconds=left,
            lock=a.job.overlap is Overlap.FORBID,
            rerun_id=a.rerun_id,
            supersede=_supersedes(a.job),
            timeout=left + CLIENT_TIMEOUT_MARGIN,
        )
        deadline.statement_timeout = left
        if claimed is None or claimed.final is not None:
            if a.ack is not None:
                ledger.acknowledge(tx, a.ack)
            return "duplicate" if claimed is None else claimed.final  # type: ignore[return-value]
        rows = await step(tx)
        ledger.succeed(
            tx,
            job=a.job.name,
            slot=a.slot,
            attempt=a.attempt,
            message_id=a.message_id,
            started_at=a.started_at,
            rerun_id=a.rerun_id,
            rows=rows,
            duration_ms=(time.perf_counter() - t0) * 1000,
            finished_at=clock(),
            ack=a.ack,  # sent with COMMIT: it holds its row locks only until then
        )
    return rows
