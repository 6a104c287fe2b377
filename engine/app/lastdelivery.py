"""A pulled message whose last delivery ends in a retry: handed back, Cloudflare would
move it to its DLQ with no row in ``cronwright.dead_letters``, so the pull consumer
dead-letters it itself first, and marks the slot's ledger row."""

from __future__ import annotations

import logging

from engine.adapters import cfqueue
from engine.core.errors import JobFailed
from engine.core.times import Clock
from engine.runtime import ledger, messages, shield
from engine.runtime.budget import Budget
from engine.runtime.deadletters import DeadLetter, DeadLetterSink
from engine.runtime.ledger import Failure
from engine.runtime.outcome import Outcome

log = logging.getLogger(__name__)


async def dead_letter(
    m: cfqueue.Pulled,
    outcome: Outcome,
    *,
    budget: Budget,
    sink: DeadLetterSink,
    clock: Clock,
    write_timeout: float,
) -> bool:
    """Write the message's dead letter (shielded); True when written."""
    letter = DeadLetter(
        job=outcome.job,
        type=outcome.type,
        slot=outcome.slot,
        message_id=m.id,
        body=messages.body_text(m.body),
        reason=f"delivery {m.attempts} of the {budget.deliveries} the queue allows"
        f" ended in a retry ({outcome.reason})",
        error_class=outcome.error_class or "delivery_limit",
        attempts=outcome.attempt,
        created_at=clock(),
    )
    try:
        await shield.finish(sink.put(letter), write_timeout)
    except JobFailed as err:
        log.error(
            "message %s is on its last delivery and its dead letter was not written: %s",
            m.id,
            err,
        )
        return False
    if outcome.job is not None and outcome.slot is not None:
        await _mark_dead_lettered(m, outcome, letter, budget, write_timeout)
    return True


async def _mark_dead_lettered(
    m: cfqueue.Pulled, outcome: Outcome, letter: DeadLetter, budget: Budget, write_timeout: float
) -> None:
    """The slot's ledger row says what became of it (diagnostics: losing it changes
    nothing about the message)."""
    assert outcome.job is not None and outcome.slot
    failure = Failure(
        job=outcome.job,
        slot=outcome.slot,
        status="dead_lettered",
        attempt=outcome.attempt,
        message_id=m.id,
        started_at=letter.created_at,
        finished_at=letter.created_at,
        duration_ms=outcome.duration_ms,
        error_class=letter.error_class,
        error=letter.reason,
    )
    try:
        await shield.finish(ledger.record_failure(budget.db, failure), write_timeout)
    except JobFailed as err:
        log.warning("dead letter of %s not marked in the ledger: %s", m.id, err)
