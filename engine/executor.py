"""The executor: one queue delivery -> the job's effect, exactly once per slot.

For a delivery it resolves the job and slot (a bad message is dead-lettered with its
reason), then runs ONE transaction that bounds its waits by the job's timeout, takes the
job's advisory lock when overlap is forbidden, claims (job, slot) in the ledger (a slot
already succeeded is a duplicate), runs the SQL (or the action's query and the action),
and marks the slot succeeded. The effect and its ledger row commit together or not at
all. A failure is recorded after the rollback, and becomes a retry or a dead letter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from engine import ledger, messages, retry, sqltemplates
from engine.errors import ConfigError, JobFailed, MessageError, SlotNotDue, TemplateError
from engine.ledger import Db, DeadLetter, DeadLetterSink, Failure
from engine.metrics import MetricRecord, MetricsSink, Status
from engine.model import Job, Manifest, Overlap
from engine.slots import Schedule, ScheduleFor, cron_schedule, iso

log = logging.getLogger(__name__)

T = TypeVar("T")
Action = Callable[[Sequence[Mapping[str, Any]], datetime], Awaitable[int]]
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

# The server's statement_timeout fires first; the client's is the backstop for a
# server that stopped answering.
CLIENT_TIMEOUT_MARGIN = 5.0
POISON = "invalid_message"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: Status
    job: str | None
    type: str | None
    slot: datetime | None
    attempt: int
    rows: int | None = None
    delay_seconds: float | None = None  # for retry: when the transport should redeliver
    error_class: str | None = None
    reason: str | None = None
    duration_ms: float = 0.0

    @property
    def succeeded(self) -> bool:
        """The slot's effect is in place (now or by an earlier delivery)."""
        return self.status in ("ack", "duplicate")


def _error_class(err: Exception) -> str:
    if isinstance(err, JobFailed):
        return err.error_class
    return "template_error" if isinstance(err, TemplateError) else "config_error"


class Executor:
    """Runs deliveries with the resources it is given; it opens and closes nothing."""

    def __init__(
        self,
        *,
        db: Db,
        manifest: Manifest,
        templates: Mapping[str, str],
        actions: Mapping[str, Action],
        dead_letters: DeadLetterSink,
        metrics: MetricsSink,
        clock: Clock,
        sleep: Sleep,
        rng: retry.Rng,
        schedule_for: ScheduleFor = cron_schedule,
        queue: str | None = None,
        write_timeout: float = 30.0,
    ) -> None:
        self._db = db
        self._manifest = manifest
        self._templates = templates
        self._actions = actions
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._schedules: dict[str, Schedule] = {j.name: schedule_for(j) for j in manifest.jobs}
        self._queue = queue or manifest.queue.name
        self._write_timeout = write_timeout

    def _schedule(self, job: Job) -> Schedule:
        return self._schedules[job.name]

    async def handle(self, body: messages.Body, *, message_id: str, attempt: int) -> Outcome:
        """One delivery of a queue message; ``attempt`` counts from 1."""
        started = time.perf_counter()
        try:
            msg = messages.parse(
                body, self._manifest, now=self._clock(), schedule_for=self._schedule
            )
        except SlotNotDue as err:
            # Our clock trails Cloudflare's: hand the message back until its slot is due.
            job = self._manifest.job_by_type(messages.peek_type(body) or "")
            outcome = Outcome(
                status="retry",
                job=job.name if job else None,
                type=job.type if job else None,
                slot=None,
                attempt=attempt,
                delay_seconds=float(math.ceil(err.due_in_seconds) + 1),
                error_class="slot_not_due",
                reason=str(err),
            )
        except MessageError as err:
            outcome = await self._poison(body, err, message_id=message_id, attempt=attempt)
        else:
            outcome = await self._attempt(msg.job, msg.slot, attempt, message_id, body)
        return self._emit(outcome, message_id, started)

    async def run_until_done(
        self, job: Job, slot: datetime, *, message_id: str = "local"
    ) -> Outcome:
        """Run one slot in-process, retrying with the job's policy and the injected sleep.
        Returns the last outcome: ack, duplicate, dead_letter, or retry when even
        recording the failure kept failing."""
        body = json.dumps({"type": job.type, "scheduledFor": iso(slot)})
        attempt = 1
        while True:
            started = time.perf_counter()
            outcome = await self._attempt(job, slot, attempt, message_id, body)
            outcome = self._emit(outcome, message_id, started)
            if outcome.status != "retry" or attempt >= job.retry.max_attempts:
                return outcome
            await self._sleep(outcome.delay_seconds or 0.0)
            attempt += 1

    def _emit(self, outcome: Outcome, message_id: str, started: float) -> Outcome:
        outcome = replace(outcome, duration_ms=round((time.perf_counter() - started) * 1000, 3))
        self._metrics.emit(
            MetricRecord(
                queue=self._queue,
                message_id=message_id,
                status=outcome.status,
                event_type=outcome.type,
                duration_ms=outcome.duration_ms,
                attempt=outcome.attempt,
                slot=iso(outcome.slot) if outcome.slot else None,
                rows=outcome.rows,
                error_class=outcome.error_class,
            )
        )
        return outcome

    async def _attempt(
        self, job: Job, slot: datetime, attempt: int, message_id: str, body: messages.Body
    ) -> Outcome:
        base = Outcome(status="ack", job=job.name, type=job.type, slot=slot, attempt=attempt)
        started_at = self._clock()
        t0 = time.perf_counter()
        try:
            rows = await self._run(job, slot, attempt, message_id, started_at)
        except (JobFailed, TemplateError, ConfigError) as err:
            # A template that fails to render or an action that is not configured will
            # not get better by retrying: dead-letter with the reason.
            failure = Failure(
                job=job.name,
                slot=slot,
                status="failed",
                attempt=attempt,
                message_id=message_id,
                started_at=started_at,
                finished_at=self._clock(),
                duration_ms=(time.perf_counter() - t0) * 1000,
                error_class=_error_class(err),
                error=str(err),
            )
            return await self._failed(job, base, failure, getattr(err, "transient", False), body)
        if rows is None:
            return replace(base, status="duplicate")
        return replace(base, rows=rows)

    async def _run(
        self, job: Job, slot: datetime, attempt: int, message_id: str, started_at: datetime
    ) -> int | None:
        """The one transaction. Returns the rows affected, or None for a duplicate."""
        statements = self._render(job, slot)
        action = self._action(job)
        timeout = job.timeout_seconds + CLIENT_TIMEOUT_MARGIN
        t0 = time.perf_counter()
        async with self._db.transaction() as tx:
            claimed = await ledger.claim(
                tx,
                job=job.name,
                slot=slot,
                attempt=attempt,
                message_id=message_id,
                started_at=started_at,
                timeout_seconds=job.timeout_seconds,
                lock=job.overlap is Overlap.FORBID,
                timeout=timeout,
            )
            if not claimed:
                return None
            if action is None:
                rows = 0
                for st in statements:
                    rows += await tx.execute(st.sql, *st.args, timeout=timeout)
            else:
                selected: list[dict[str, Any]] = []
                for st in statements:
                    selected = await tx.fetch(st.sql, *st.args, timeout=timeout)
                rows = await action(selected, slot)
            await ledger.succeed(
                tx,
                job=job.name,
                slot=slot,
                rows=rows,
                duration_ms=(time.perf_counter() - t0) * 1000,
                finished_at=self._clock(),
            )
        return rows

    def _render(self, job: Job, slot: datetime) -> list[sqltemplates.Rendered]:
        source = self._templates.get(job.template)
        if source is None:
            raise ConfigError(f"job {job.name}: template {job.template} was not loaded")
        return sqltemplates.split_statements(sqltemplates.render(job, source, slot))

    def _action(self, job: Job) -> Action | None:
        if job.action is None:
            return None
        action = self._actions.get(job.action.name)
        if action is None:
            raise ConfigError(
                f"job {job.name} needs the action '{job.action.name}', which is not configured"
            )
        return action

    async def _failed(
        self, job: Job, base: Outcome, failure: Failure, transient: bool, body: messages.Body
    ) -> Outcome:
        decision = retry.decide(
            job.retry,
            attempt=failure.attempt,
            transient=transient,
            now=failure.finished_at,
            next_slot=self._schedule(job).next_after(failure.slot),
            rng=self._rng,
        )
        failed = replace(
            base, status="dead_letter", error_class=failure.error_class, reason=failure.error
        )
        if isinstance(decision, retry.Retry):
            await self._record(failure)
            return replace(failed, status="retry", delay_seconds=decision.delay_seconds)
        reason = f"{decision.reason}: {failure.error}"
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
        status = "dead_lettered" if outcome.status == "dead_letter" else "failed"
        await self._record(replace(failure, status=status))
        return outcome

    async def _poison(
        self, body: messages.Body, err: MessageError, *, message_id: str, attempt: int
    ) -> Outcome:
        type_ = messages.peek_type(body)
        job = self._manifest.job_by_type(type_) if type_ else None
        letter = DeadLetter(
            job=job.name if job else None,
            type=type_,
            slot=None,
            message_id=message_id,
            body=messages.body_text(body),
            reason=str(err),
            error_class=POISON,
            attempts=attempt,
            created_at=self._clock(),
        )
        outcome = Outcome(
            status="dead_letter",
            job=letter.job,
            type=type_,
            slot=None,
            attempt=attempt,
            error_class=POISON,
            reason=str(err),
        )
        return await self._dead_letter(letter, outcome, job)

    async def _dead_letter(self, letter: DeadLetter, outcome: Outcome, job: Job | None) -> Outcome:
        """Write the dead letter; if that fails, ask for redelivery rather than drop it."""
        try:
            await self._final(self._dead_letters.put(letter))
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
            )
        return outcome

    async def _record(self, failure: Failure) -> None:
        """The failure row is diagnostics: losing it must not change the outcome."""
        try:
            await self._final(ledger.record_failure(self._db, failure))
        except JobFailed as err:
            log.warning("failure of %s at %s not recorded: %s", failure.job, iso(failure.slot), err)

    async def _final(self, write: Awaitable[T]) -> T:
        """Finish a final write even if we are cancelled meanwhile, then re-raise the
        cancellation."""
        task = asyncio.ensure_future(asyncio.wait_for(write, self._write_timeout))
        try:
            return await asyncio.shield(task)
        except TimeoutError:
            raise JobFailed(
                f"final write timed out after {self._write_timeout:g}s",
                transient=True,
                error_class="timeout",
            ) from None
        except asyncio.CancelledError:
            await asyncio.wait([task], timeout=self._write_timeout)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("final write failed during cancellation: %s", task.exception())
            raise
