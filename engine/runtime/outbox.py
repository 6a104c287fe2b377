"""The outbox (``cronwright.notifications``): each notice recorded once, sent by one
process, retried with backoff, given up after a bounded number of tries.

Recording is ``INSERT ... ON CONFLICT DO NOTHING`` on the notice's key, so any number of
processes may record the same event. A sender claims due rows with ``FOR UPDATE SKIP
LOCKED`` and leases each for the length of a send (its ``due_at`` moves past it, and its
try is counted); after the send it records ``sent_at``, a retry after a backoff (the
job retry policy's rule, :func:`engine.runtime.retry.decide`, with the outbox's numbers:
:func:`policy`) or ``gave_up_at``. A sender that dies mid-send leaves the lease to lapse,
and the row is sent again: a target may see a notice twice, never none. Times are the
database's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.core.model import RetryPolicy
from engine.core.queries import query
from engine.runtime import notices, retry
from engine.runtime.notices import Notice
from engine.runtime.ports import Db, Tx

#: A try's delay doubles from the first retry's, up to this.
MAX_DELAY_SECONDS = 900


def policy(*, tries: int = 10, first_delay_seconds: int = 30) -> RetryPolicy:
    """The outbox's retries: by default 10 tries over 75 minutes (30 s, doubling to 15
    minutes), so a receiver that is down for an hour still gets what it missed. No
    jitter: how long a notice is tried is known, and each row is one sender's alone."""
    return RetryPolicy(
        max_attempts=tries,
        initial_delay_seconds=first_delay_seconds,
        max_delay_seconds=max(first_delay_seconds, MAX_DELAY_SECONDS),
        exponential=True,
        jitter=False,
    )


RETRY = policy()


@dataclass(frozen=True)
class Claimed:
    """A row to send now; ``tries`` counts this one."""

    id: int
    tries: int
    notice: Notice


async def record(tx: Tx, notices: Sequence[Notice]) -> None:
    """Record ``notices`` (each key once, whoever records it)."""
    if not notices:
        return
    await tx.execute(
        query("notifications.record"),
        [n.kind for n in notices],
        [n.subject for n in notices],
        [n.target for n in notices],
        [n.job for n in notices],
        [n.slot for n in notices],
        [n.title for n in notices],
        [n.body for n in notices],
        [n.ordered for n in notices],
    )


async def record_now(db: Db, notices: Sequence[Notice]) -> None:
    if notices:
        async with db.transaction() as tx:
            await record(tx, notices)


async def claim(db: Db, n: int, *, lease_seconds: float, pings: bool) -> list[Claimed]:
    """Up to ``n`` rows due now (``pings``, or notifications), leased for
    ``lease_seconds``."""
    if n <= 0:
        return []
    async with db.transaction() as tx:
        rows = await tx.fetch(query("notifications.claim"), n, lease_seconds, pings)
    return [
        Claimed(
            id=r["id"],
            tries=r["tries"],
            notice=Notice(
                kind=notices.kind(r["kind"]),
                subject=r["subject"],
                target=r["target"],
                job=r["job"],
                slot=r["slot"],
                title=r["title"],
                body=r["body"],
            ),
        )
        for r in sorted(rows, key=lambda r: int(r["id"]))  # a target's pings in order
    ]


async def sent(db: Db, row: Claimed) -> None:
    async with db.transaction() as tx:
        await tx.execute(query("notifications.sent"), row.id, row.tries)


def next_try(
    tries: int, *, permanent: bool, rng: retry.Rng, policy: RetryPolicy = RETRY
) -> retry.Decision:
    """After failed try ``tries`` (counted from 1): a retry after a delay, or give up."""
    return retry.decide(policy, attempt=tries, transient=not permanent, rng=rng)


async def failed(db: Db, row: Claimed, error: str, decision: retry.Decision) -> None:
    """Record a failed send: due again after the decision's delay, or given up."""
    async with db.transaction() as tx:
        if isinstance(decision, retry.Retry):
            await tx.execute(
                query("notifications.retry"), row.id, row.tries, decision.delay_seconds, error
            )
        else:
            await tx.execute(query("notifications.give_up"), row.id, row.tries, error)
