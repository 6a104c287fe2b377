"""The executor: one queue delivery -> the job's effect, exactly once per slot.

For a delivery it resolves the job and slot (a bad message is dead-lettered with its
reason), then runs ONE transaction that bounds its waits by the run's deadline, takes the
job's advisory lock when overlap is forbidden, claims (job, slot) in the ledger (a slot
already succeeded is a duplicate, unless a rerun request it has not seen asks again; a
slot inside a runtime pause is recorded ``paused`` and not run), runs the SQL (or the
action's query and the action, or the project's python function:
:mod:`engine.runtime.pyaction`), and marks the slot succeeded. The effect and its ledger
row commit together or not at all. A SQL job's transaction is one round trip
(:mod:`engine.runtime.transaction`); a job with an action, or whose values have no SQL
literal, runs it as a transaction of three. A failure is recorded after the rollback, and
becomes a retry or a dead letter (:mod:`engine.runtime.failures`).

Whatever a delivery holds, ``handle`` returns an outcome: an exception that is not one of
cronwright's own (a bug, a value no check foresaw) dead-letters the message with its class
and message, and its traceback goes to the debug log. A worker never dies of a message.

``timeout_seconds`` bounds the whole attempt: the deadline is fixed when it starts, and
the lock wait, every statement (its ``statement_timeout`` set to the time left) and the
action each get only what is left of it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from engine.core.errors import (
    ConfigError,
    CronwrightError,
    JobFailed,
    MessageError,
    NotMigrated,
    SlotNotDue,
    TemplateError,
)
from engine.core.model import Job, Manifest
from engine.core.times import Clock, Sleep, iso
from engine.runtime import messages, retry, transaction
from engine.runtime.deadletters import DeadLetterSink
from engine.runtime.deadline import Deadline, Monotonic
from engine.runtime.failures import Failures
from engine.runtime.ledger import Ack, Failure
from engine.runtime.metrics import MetricRecord, MetricsSink
from engine.runtime.outcome import Outcome, Status
from engine.runtime.ports import Db
from engine.runtime.pyaction import PythonActions
from engine.schedule.slots import Schedule, ScheduleFor, cron_schedule
from engine.sql import sqltemplates

Action = transaction.Action
log = logging.getLogger(__name__)


class RunWatch(Protocol):
    """Told when each attempt of a job starts and how it ended (healthcheck pings,
    :class:`engine.runtime.pings.Pings`). Called on the executor's path: it must only take
    note, never wait."""

    def started(self, job: Job, slot: datetime, attempt: int, message_id: str) -> None: ...

    def finished(
        self, job: Job, slot: datetime, attempt: int, message_id: str, outcome: Outcome
    ) -> None: ...


def _error_class(err: Exception) -> str:
    if isinstance(err, JobFailed):
        return err.error_class
    if isinstance(err, TemplateError):
        return "template_error"
    return "config_error" if isinstance(err, ConfigError) else type(err).__name__


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
        monotonic: Monotonic = time.monotonic,
        watch: RunWatch | None = None,
    ) -> None:
        self._db = db
        self._watch = watch
        self._manifest = manifest
        self._templates = templates
        self._actions = actions
        self._failures = Failures(
            db=db,
            manifest=manifest,
            dead_letters=dead_letters,
            rng=rng,
            clock=clock,
            write_timeout=write_timeout,
        )
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._schedules: dict[str, Schedule] = {j.name: schedule_for(j) for j in manifest.jobs}
        self._queue = queue or manifest.queue.name
        # Per (job, rerun): its template rendered once, or None to render every run.
        self._prepared: dict[tuple[str, bool], sqltemplates.Prepared | None] = {}
        # The project's folder is the manifest's: its python actions' modules live there.
        self._python = PythonActions(Path(manifest.path).parent)

    def _schedule(self, job: Job) -> Schedule:
        return self._schedules[job.name]

    async def handle(
        self,
        body: messages.Body,
        *,
        message_id: str,
        attempt: int,
        ack: Ack | None = None,
        now: datetime | None = None,
        last_delivery: str | None = None,
    ) -> Outcome:
        """One delivery of a queue message; ``attempt`` counts from 1. ``ack`` (the
        queue's) runs in the job's transaction when the outcome is succeeded, duplicate,
        paused or superseded, so that the effect, the ledger row and the ack commit
        together or not at all (for a SQL job, inside its one-round-trip run; otherwise
        sent with the success and COMMIT). ``now``: the transport's time for the check
        that the slot is due (the local queue's claim, by the database's clock); default
        the executor's clock. ``last_delivery``: why the transport will not deliver this
        message again, when it will not: a retry becomes a dead letter."""
        started = time.perf_counter()
        try:
            outcome = await self._handle(body, message_id, attempt, ack, now, last_delivery)
        except NotMigrated:
            raise  # no message can run on this database: the consumer stops
        except Exception as exc:  # not ours: a dead letter with its class, never a dead worker
            log.debug("message %s: unexpected %s", message_id, type(exc).__name__, exc_info=True)
            outcome = await self._failures.poison(
                body, exc, message_id=message_id, attempt=attempt, error_class=type(exc).__name__
            )
        return self._emit(outcome, message_id, started)

    async def _handle(
        self,
        body: messages.Body,
        message_id: str,
        attempt: int,
        ack: Ack | None,
        now: datetime | None,
        last_delivery: str | None,
    ) -> Outcome:
        try:
            msg = messages.parse(
                body, self._manifest, now=now or self._clock(), schedule_for=self._schedule
            )
        except SlotNotDue as err:
            if last_delivery is not None:
                return await self._failures.poison(
                    body,
                    err,
                    message_id=message_id,
                    attempt=attempt,
                    error_class="slot_not_due",
                    reason=f"{last_delivery}: {err}",
                )
            # Our clock trails Cloudflare's: hand the message back until its slot is due.
            job = self._manifest.job_by_type(messages.peek_type(body) or "")
            return Outcome(
                status="retry",
                job=job.name if job else None,
                type=job.type if job else None,
                slot=None,
                attempt=attempt,
                delay_seconds=float(math.ceil(err.due_in_seconds) + 1),
                error_class="slot_not_due",
                reason=str(err),
                handback=True,
            )
        except MessageError as err:
            return await self._failures.poison(body, err, message_id=message_id, attempt=attempt)
        return await self._attempt(
            msg.job,
            msg.slot,
            attempt,
            message_id,
            body,
            rerun=msg.rerun,
            ack=ack,
            last_delivery=last_delivery,
        )

    async def run_until_done(
        self,
        job: Job,
        slot: datetime,
        *,
        message_id: str = "local",
        rerun: str | bool | None = None,
    ) -> Outcome:
        """Run one slot in-process, retrying with the job's policy and the injected sleep.
        ``rerun`` recomputes a slot that already succeeded, once per rerun request: pass
        the request's id, or True for a new request. Returns the last outcome: succeeded,
        duplicate, paused, dead_lettered, or retry when even recording the failure kept
        failing."""
        if rerun is True:
            rerun = messages.new_rerun_id()
        rerun = rerun or None
        data = {"type": job.type, "scheduledFor": iso(slot)}
        if rerun is not None:
            data["rerun"] = rerun
        body = json.dumps(data)
        attempt = 1
        while True:
            started = time.perf_counter()
            outcome = await self._attempt(job, slot, attempt, message_id, body, rerun=rerun)
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
        self,
        job: Job,
        slot: datetime,
        attempt: int,
        message_id: str,
        body: messages.Body,
        *,
        rerun: str | None = None,
        ack: Ack | None = None,
        last_delivery: str | None = None,
    ) -> Outcome:
        if self._watch is None:
            return await self._attempt_once(
                job, slot, attempt, message_id, body, rerun, ack, last_delivery
            )
        self._watch.started(job, slot, attempt, message_id)
        outcome = await self._attempt_once(
            job, slot, attempt, message_id, body, rerun, ack, last_delivery
        )
        self._watch.finished(job, slot, attempt, message_id, outcome)
        return outcome

    async def _attempt_once(
        self,
        job: Job,
        slot: datetime,
        attempt: int,
        message_id: str,
        body: messages.Body,
        rerun: str | None,
        ack: Ack | None,
        last_delivery: str | None,
    ) -> Outcome:
        a = transaction.Attempt(
            job=job,
            slot=slot,
            attempt=attempt,
            message_id=message_id,
            started_at=self._clock(),
            rerun_id=rerun,
            ack=ack,
        )
        t0 = time.perf_counter()
        try:
            rows = await self._run(a)
        except NotMigrated:
            raise  # not the job's failure: no retry helps, and no ledger could record one
        except Exception as err:
            # A template that fails to render, an action that is not configured, a value
            # no check foresaw: only what the error says is transient is retried.
            if not isinstance(err, CronwrightError):
                log.debug("%s at %s: unexpected error", job.name, iso(slot), exc_info=True)
            failure = Failure(
                job=job.name,
                slot=slot,
                status="failed",
                attempt=attempt,
                message_id=message_id,
                started_at=a.started_at,
                finished_at=self._clock(),
                duration_ms=(time.perf_counter() - t0) * 1000,
                error_class=_error_class(err),
                error=str(err) or type(err).__name__,
                rerun_id=rerun,
            )
            base = Outcome(
                status="succeeded", job=job.name, type=job.type, slot=slot, attempt=attempt
            )
            transient = bool(getattr(err, "transient", isinstance(err, TimeoutError)))
            return await self._failures.failed(
                job, base, failure, transient, body, last_delivery=last_delivery
            )
        status: Status = rows if isinstance(rows, str) else "succeeded"
        counted = None if isinstance(rows, str) else rows
        return Outcome(
            status=status, job=job.name, type=job.type, slot=slot, attempt=attempt, rows=counted
        )

    async def _run(self, a: transaction.Attempt) -> transaction.Result:
        """The one transaction: the rows affected, ``duplicate``, ``paused`` or
        ``superseded`` (see :func:`engine.runtime.transaction.run`)."""
        deadline = Deadline(a.job.timeout_seconds, self._monotonic)
        rerun = a.rerun_id is not None
        python = a.job.action.python if a.job.action else None
        if python is not None:
            step = self._python.step(a.job, python, a.slot, rerun=rerun, deadline=deadline)
            return await transaction.in_a_transaction(self._db, a, step, deadline, self._clock)
        statements = self._render(a.job, a.slot, rerun=rerun)
        return await transaction.run(
            self._db, a, statements, self._action(a.job), deadline, self._clock
        )

    def _render(self, job: Job, slot: datetime, *, rerun: bool) -> list[sqltemplates.Rendered]:
        if job.template is None:
            raise ConfigError(f"job {job.name} has no SQL template")
        source = self._templates.get(job.template)
        if source is None:
            raise ConfigError(f"job {job.name}: template {job.template} was not loaded")
        key = (job.name, rerun)
        if key not in self._prepared:
            self._prepared[key] = sqltemplates.prepare(job, source, rerun=rerun)
        prepared = self._prepared[key]
        if prepared is None:  # its text may depend on the slot: render it in full
            rendered = sqltemplates.render(job, source, slot, rerun=rerun)
        else:
            rendered = prepared.fill(job, slot)
        return sqltemplates.split_statements(rendered)

    def _action(self, job: Job) -> Action | None:
        if job.action is None or job.action.name is None:
            return None
        action = self._actions.get(job.action.name)
        if action is None:
            raise ConfigError(
                f"job {job.name} needs the action '{job.action.name}', which is not configured"
            )
        return action
