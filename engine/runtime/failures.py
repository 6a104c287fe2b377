"""What happens to a delivery that did not succeed: the job's retry policy decides between
a retry and a dead letter; a message that cannot be run at all is poison; a retry on the
last delivery the transport allows is a dead letter too (else the transport would drop or
move it without our record). This is the one place that dead-letters: the executor calls
it for every transport. Dead letters and failure rows are final writes, finished even
under cancellation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from engine.core.errors import JobFailed, NotMigrated
from engine.core.model import Job, Manifest
from engine.core.times import iso
from engine.runtime import ledger, messages, retry, shield
from engine.runtime.deadletters import DeadLetter, DeadLetterSink
from engine.runtime.ledger import Failure
from engine.runtime.outcome import Outcome
from engine.runtime.ports import Db

log = logging.getLogger(__name__)

POISON = "invalid_message"
#: Error classes that usually mean the database is behind the project's migrations.
_MISSING_SCHEMA = frozenset({"undefined_table", "undefined_column"})
MIGRATE_HINT = "if the schema is behind the project, run `cronwright db migrate`"


class Failures:
    """Turns failures into retries or dead letters, and records them."""

    def __init__(
        self,
        *,
        db: Db,
        manifest: Manifest,
        dead_letters: DeadLetterSink,
        rng: retry.Rng,
        clock: Callable[[], datetime],
        write_timeout: float,
    ) -> None:
        self._clock = clock
        self._db = db
        self._manifest = manifest
        self._dead_letters = dead_letters
        self._rng = rng
        self._write_timeout = write_timeout

    async def failed(
        self,
        job: Job,
        base: Outcome,
        failure: Failure,
        transient: bool,
        body: messages.Body,
        *,
        last_delivery: str | None = None,
    ) -> Outcome:
        """``last_delivery``: why the transport will not deliver the message again (None:
        it will)."""
        decision = retry.decide(
            job.retry, attempt=failure.attempt, transient=transient, rng=self._rng
        )
        failed = replace(
            base, status="dead_lettered", error_class=failure.error_class, reason=failure.error
        )
        if isinstance(decision, retry.Retry) and last_delivery is None:
            await self._record(failure)
            return replace(failed, status="retry", delay_seconds=decision.delay_seconds)
        why = decision.reason if isinstance(decision, retry.GiveUp) else last_delivery
        reason = f"{why}: {failure.error}"
        if failure.error_class in _MISSING_SCHEMA:
            reason += f"; {MIGRATE_HINT}"
        letter = DeadLetter(
            job=job.name,
            type=job.type,
            slot=failure.slot,
            message_id=failure.message_id,
            body=messages.body_text(body),
            reason=reason,
            error_class=failure.error_class,
            attempts=failure.attempt,
            created_at=failure.finished_at,
        )
        outcome = await self._dead_letter(letter, replace(failed, reason=reason), job)
        # Only a dead letter that was written ends the slot's attempts.
        status = "dead_lettered" if outcome.status == "dead_lettered" else "failed"
        await self._record(replace(failure, status=status))
        return outcome

    async def poison(
        self,
        body: messages.Body,
        err: Exception,
        *,
        message_id: str,
        attempt: int,
        error_class: str = POISON,
        reason: str | None = None,
    ) -> Outcome:
        """A message that cannot be run (``err`` says why, unless ``reason`` does):
        dead-lettered with the reason."""
        type_ = messages.peek_type(body)
        job = self._manifest.job_by_type(type_) if type_ else None
        if reason is None:
            reason = str(err) if error_class == POISON else f"{error_class}: {err}"
        letter = DeadLetter(
            job=job.name if job else None,
            type=type_,
            slot=None,
            message_id=message_id,
            body=messages.body_text(body),
            reason=reason,
            error_class=error_class,
            attempts=attempt,
            created_at=self._clock(),
        )
        outcome = Outcome(
            status="dead_lettered",
            job=letter.job,
            type=type_,
            slot=None,
            attempt=attempt,
            error_class=error_class,
            reason=reason,
        )
        return await self._dead_letter(letter, outcome, job)

    async def _dead_letter(self, letter: DeadLetter, outcome: Outcome, job: Job | None) -> Outcome:
        """Write the dead letter; if that fails, ask for redelivery rather than drop it."""
        try:
            await shield.finish(self._dead_letters.put(letter), self._write_timeout)
        except NotMigrated:
            raise  # nowhere to keep it, however often it comes back: stop, with the hint
        except JobFailed as err:
            log.error("dead letter for message %s not written: %s", letter.message_id, err)
            seconds = float(
                retry.backoff_cap(job.retry, letter.attempts)
                if job
                else self._manifest.queue.consumer.retry_delay_seconds
            )
            return replace(
                outcome,
                status="retry",
                delay_seconds=seconds,
                error_class=err.error_class,
                reason=f"dead letter not written ({err}); {outcome.reason}",
                handback=True,
            )
        return outcome

    async def _record(self, failure: Failure) -> None:
        """The failure row is diagnostics: losing it must not change the outcome."""
        try:
            await shield.finish(ledger.record_failure(self._db, failure), self._write_timeout)
        except JobFailed as err:
            log.warning("failure of %s at %s not recorded: %s", failure.job, iso(failure.slot), err)
