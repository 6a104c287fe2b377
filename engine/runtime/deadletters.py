"""``cronwright.dead_letters``: the executor writes them (:class:`PgDeadLetters`, behind
the :class:`DeadLetterSink` protocol, through :mod:`engine.runtime.failures`); the
operator lists, replays and purges them. A transport with a dead-letter queue of its own
gets a copy after the row (:class:`CopiedDeadLetters`).

A replay runs the letter's slot again (in place, or re-enqueued) and then marks the row
replayed. The run ledger makes the effect exactly-once whatever happens around it: a
slot that succeeded meanwhile (or by a concurrent replay) is a duplicate, so replaying a
letter twice runs it once. A row already marked is skipped; a purged row is hidden from
``list`` and deleted later by retention.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.core.errors import JobFailed
from engine.core.queries import query
from engine.core.times import iso, slot_out_of_range
from engine.runtime.ports import Db

log = logging.getLogger(__name__)


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
                query("dead_letters.put"),
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


def dlq_body(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as a transport's DLQ message: the original body (a JSON object) plus
    ``deadLetter``; any other body is kept as text under ``body``."""
    meta = {
        "reason": letter.reason,
        "errorClass": letter.error_class,
        "attempts": letter.attempts,
        "job": letter.job,
        "slot": iso(letter.slot) if letter.slot else None,
        "messageId": letter.message_id,
    }
    try:
        original = json.loads(letter.body)
    except json.JSONDecodeError:
        original = None
    if isinstance(original, dict):
        return {**original, "deadLetter": meta}
    return {"body": letter.body, "deadLetter": meta}


class CopiedDeadLetters:
    """Dead letters to a sink of record (``cronwright.dead_letters``), then a copy through
    ``copy`` (Cloudflare's DLQ). The record goes first: when it fails nothing is copied
    and the error reaches the executor, which hands the message back, so the DLQ never
    holds a letter without its row. A failed copy after the row is written is logged, not
    retried: redelivering would run the job again for a copy."""

    def __init__(
        self, record: DeadLetterSink, copy: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        self._record = record
        self._copy = copy

    async def put(self, letter: DeadLetter) -> None:
        await self._record.put(letter)
        try:
            await self._copy(dlq_body(letter))
        except JobFailed as err:
            log.error("dead letter of message %s not copied to the DLQ: %s", letter.message_id, err)


COLUMNS = (
    "id",
    "job",
    "type",
    "slot",
    "message_id",
    "reason",
    "error_class",
    "attempts",
    "created_at",
    "replayed_at",
    "replayed_as",
    "replayed_by",
)


NO_SUCH_LETTER = "no such dead letter"


@dataclass(frozen=True)
class Pending:
    """A dead letter to replay, or why it cannot be (``skip``)."""

    id: int
    job: str | None
    slot: datetime | None
    skip: str | None
    body: str | None = None  # the original message, e.g. its rerun request id


async def listing(
    db: Db,
    *,
    job: str | None = None,
    since: datetime | None = None,
    slot: datetime | None = None,
    newest: int | None = None,
) -> list[dict[str, Any]]:
    """Dead letters not purged, oldest first (``dead-letters list``), of ``job``, created
    since ``since``, of one ``slot``; ``newest``: only the last N, newest first."""
    async with db.transaction() as tx:
        return await tx.fetch(
            query("dead_letters.list"), job, since, slot, newest, newest is not None
        )


async def pending(
    db: Db,
    *,
    ids: Sequence[int] | None,
    job: str | None,
    known_jobs: Sequence[str],
    now: datetime,
) -> list[Pending]:
    """The letters a replay covers: ``ids``, or (None) every pending one of ``job`` or
    of all jobs. Each carries the reason it must be skipped, if any (a slot outside the
    sane range of slots is one)."""
    async with db.transaction() as tx:
        rows = await tx.fetch(
            query("dead_letters.pending"), list(ids) if ids is not None else None, job
        )
    found = {r["id"]: r for r in rows}
    out = []
    for id_ in ids if ids is not None else sorted(found):
        r = found.get(id_)
        skip = None
        if r is None:
            skip = NO_SUCH_LETTER
        elif r["purged_at"] is not None:
            skip = "purged"
        elif r["replayed_at"] is not None:
            skip = f"already replayed ({r['replayed_as']})"
        elif r["job"] is None or r["slot"] is None:
            skip = "the message could not be parsed, so it names no slot to replay"
        elif r["job"] not in known_jobs:
            skip = f"job '{r['job']}' is not in the manifest"
        elif (problem := slot_out_of_range(r["slot"], now)) is not None:
            skip = f"slot {problem}"
        if r is None:
            out.append(Pending(id=id_, job=None, slot=None, skip=skip))
        else:
            out.append(Pending(id=id_, job=r["job"], slot=r["slot"], skip=skip, body=r["body"]))
    return out


async def mark_replayed(db: Db, id_: int, *, how: str, at: datetime, by: str | None = None) -> bool:
    """Mark one letter replayed ``by`` an operator; False when another replay marked it
    first."""
    async with db.transaction() as tx:
        return await tx.execute(query("dead_letters.mark_replayed"), id_, at, how, by) == 1


async def purge(db: Db, *, before: datetime, at: datetime) -> int:
    """Mark every letter created before ``before`` purged; returns how many."""
    async with db.transaction() as tx:
        return await tx.execute(query("dead_letters.purge"), before, at)
