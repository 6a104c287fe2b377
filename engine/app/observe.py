"""Prometheus metrics and ``/healthz`` for ``serve`` and ``consume`` (both transports).

Each process has its own registry (never the global one). Runs by job and status, the
run-duration histogram (its buckets from the manifest's timeouts) and each job's last run
duration come from the executor's metric records; each job's timeout from the manifest.
Queue depth and each job's missing slots (how many, and the oldest one's age) are
refreshed on a timer. A slot is missing by the scheduling core's one rule
(:mod:`engine.runtime.scheduling`): the gauges read the same :class:`SlotBook` the
reconciler of the process acts on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.adapters.pgqueue import PgQueue
from engine.app.web import bound_port as bound_port
from engine.app.web import http_endpoint as http_endpoint
from engine.core import durations
from engine.core.model import Manifest
from engine.runtime.metrics import MetricRecord, MetricsSink
from engine.runtime.notices import KINDS
from engine.runtime.outcome import STATUSES
from engine.runtime.slotbook import SlotBook

log = logging.getLogger(__name__)

#: The job label of a message of no known type.
UNKNOWN = "unknown"
#: Outcomes of a run that did the job's work (or tried to): their durations are the
#: job's, unlike a duplicate's or a paused slot's.
_RAN = frozenset({"succeeded", "retry", "dead_lettered"})
#: What became of one try of a notification (:meth:`Metrics.notified`).
NOTICE_OUTCOMES = ("sent", "retry", "given_up")


class Metrics:
    """The registry and its metrics; also a :class:`MetricsSink` for the executor.

    Every job's run counters and histogram exist from the start at 0, so that
    ``increase()`` sees a job's first dead letter (a series born at 1 shows no increase).
    """

    def __init__(self, manifest: Manifest, *, forward: MetricsSink | None = None) -> None:
        self.registry = CollectorRegistry()
        self._forward = forward
        # Labelled by job name, like the missing-slot gauges; a message of no known
        # type (poison) counts under "unknown", so bad input cannot add label values.
        self._names = {j.type: j.name for j in manifest.jobs}
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._last: dict[str, Any] = {}
        self.runs = Counter(
            "cronwright_runs", "Deliveries by job and outcome status", ["job", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "cronwright_run_duration_seconds", "Delivery duration", ["job"],
            buckets=durations.duration_buckets(manifest.jobs), registry=self.registry,
        )  # fmt: skip
        self.last_duration = Gauge(
            "cronwright_last_run_duration_seconds",
            "Duration of the job's last run that did work (succeeded, retry, dead_lettered)",
            ["job"], registry=self.registry,
        )  # fmt: skip
        self.timeout = Gauge(
            "cronwright_job_timeout_seconds", "The job's timeout_seconds in the manifest",
            ["job"], registry=self.registry,
        )  # fmt: skip
        self.depth = Gauge(
            "cronwright_queue_depth", "Messages in the queue, by state", ["queue", "state"],
            registry=self.registry,
        )  # fmt: skip
        self.missing_age = Gauge(
            "cronwright_oldest_missing_slot_age_seconds",
            "Age of the job's oldest due slot that has not succeeded (0: none)", ["job"],
            registry=self.registry,
        )  # fmt: skip
        self.missing = Gauge(
            "cronwright_missing_slots", "Due slots that have not succeeded", ["job"],
            registry=self.registry,
        )  # fmt: skip
        self.notifications = Counter(
            "cronwright_notifications",
            "Notifications and healthcheck pings sent, failed for a retry, or given up",
            ["kind", "outcome"], registry=self.registry,
        )  # fmt: skip
        for kind in KINDS:  # from 0, so that the first one given up is an increase
            for outcome in NOTICE_OUTCOMES:
                self.notifications.labels(kind=kind, outcome=outcome)
        # Each scheduled job's missing-slot gauges, from 0; a refresh sets those of the
        # jobs with missing slots now or at the refresh before (the rest stay 0), so its
        # cost follows the jobs that miss slots, not the number of jobs.
        self._missing_gauges: dict[str, tuple[Any, Any]] = {}
        self._missed: set[str] = set()
        for job in manifest.jobs:
            self.timeout.labels(job=job.name).set(job.timeout_seconds)
            for status in STATUSES:
                self._child(job.name, status)
            if not job.paused:
                self._missing_gauges[job.name] = (
                    self.missing.labels(job=job.name),
                    self.missing_age.labels(job=job.name),
                )
        self._child(UNKNOWN, "dead_lettered")

    def _child(self, job: str, status: str) -> tuple[Any, Any]:
        children = self._children.get((job, status))
        if children is None:  # labels() costs a lock and a lookup: once per job and status
            children = (self.runs.labels(job=job, status=status), self.duration.labels(job=job))
            self._children[(job, status)] = children
        return children

    def emit(self, record: MetricRecord) -> None:
        seconds = record.duration_ms / 1000
        job = self._names.get(record.event_type or "", UNKNOWN)
        runs, duration = self._child(job, record.status)
        runs.inc()
        duration.observe(seconds)
        if record.status in _RAN:  # created on a job's first run: no "last run" before
            last = self._last.get(job)
            if last is None:
                last = self._last[job] = self.last_duration.labels(job=job)
            last.set(seconds)
        if self._forward is not None:
            self._forward.emit(record)

    def set_missing(self, missing: Mapping[str, Sequence[datetime]], now: datetime) -> None:
        """Each scheduled job's missing slots (oldest first; a job not in ``missing``
        has none): how many, and the oldest one's age."""
        missed = {name for name in missing if name in self._missing_gauges}
        for name in missed | self._missed:
            slots = missing.get(name, ())
            count, age = self._missing_gauges[name]
            count.set(len(slots))
            age.set((now - slots[0]).total_seconds() if slots else 0.0)
        self._missed = missed

    def notified(self, kind: str, outcome: str) -> None:
        """A notification's try: ``sent``, ``retry`` (failed, tried again later) or
        ``given_up`` (failed for good)."""
        self.notifications.labels(kind=kind, outcome=outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


#: A queue's depth by state (the local queue: ready, delayed, leased; Cloudflare: backlog).
Depth = Callable[[], Awaitable[Mapping[str, int | None]]]


def local_depth(queue: PgQueue) -> Depth:
    async def depth() -> Mapping[str, int | None]:
        d = await queue.depth()
        return {"ready": d.ready, "delayed": d.delayed, "leased": d.leased}

    return depth


async def refresh(
    metrics: Metrics, book: SlotBook, queue: str, depth: Depth, now: datetime
) -> None:
    """Queue depth, and each scheduled job's missing slots as the book has them now."""
    for state, count in (await depth()).items():
        if count is not None:
            metrics.depth.labels(queue=queue, state=state).set(count)
    await book.refresh(now)
    metrics.set_missing(book.missing_by_job(), now)
