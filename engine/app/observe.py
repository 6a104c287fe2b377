"""Prometheus metrics and ``/healthz`` for ``serve`` and ``consume`` (both transports).

Each process has its own registry (never the global one). Runs by job and status, the
run-duration histogram (its buckets from the manifest's timeouts) and each job's last run
duration come from the executor's metric records; each job's timeout from the manifest.
Queue depth and the age of each job's oldest missing slot are refreshed from Postgres on a
timer. A slot is missing when it is due, not succeeded in the ledger and not paused; only
slots since the job was first dispatched or run (at most ``lookback`` ago) count, so a
fresh database reports 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.adapters.pgqueue import PgQueue
from engine.app.web import bound_port as bound_port
from engine.app.web import http_endpoint as http_endpoint
from engine.core import durations
from engine.core.errors import JobFailed
from engine.core.model import Job, Manifest
from engine.core.times import Clock
from engine.runtime import pauses
from engine.runtime.ledger import Db
from engine.runtime.metrics import MetricRecord, MetricsSink
from engine.runtime.outcome import STATUSES
from engine.schedule.slots import cron_schedule

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=7)
#: The job label of a message of no known type.
UNKNOWN = "unknown"
#: Outcomes of a run that did the job's work (or tried to): their durations are the
#: job's, unlike a duplicate's or a paused slot's.
_RAN = frozenset({"succeeded", "retry", "dead_lettered"})

# A job's first slot is its first dispatched by cronwright or run at all: slots the
# Cloudflare Worker sends are not in cronwright.dispatched, but they reach the ledger.
_DONE = """
SELECT j.job,
       least((SELECT min(slot) FROM cronwright.dispatched WHERE job = j.job),
             (SELECT min(slot) FROM cronwright.runs WHERE job = j.job)) AS first,
       coalesce((SELECT array_agg(r.slot) FROM cronwright.runs AS r
                 WHERE r.job = j.job AND r.status = 'succeeded' AND r.slot >= $2), '{}') AS done
FROM unnest($1::text[]) AS j(job)
"""


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
        for job in manifest.jobs:
            self.timeout.labels(job=job.name).set(job.timeout_seconds)
            for status in STATUSES:
                self._child(job.name, status)
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def missing_slots(
    job: Job, first: datetime, done: set[datetime], paused: list[pauses.Pause], now: datetime
) -> list[datetime]:
    """The job's due slots in ``[first, now]`` that did not succeed and are not paused."""
    schedule = cron_schedule(job)
    out = []
    t: datetime | None = first if schedule.matches(first) else schedule.next_after(first)
    while t is not None and t <= now:
        if t not in done and not any(p.covers(t) for p in paused):
            out.append(t)
        t = schedule.next_after(t)
    return out


async def missing_by_job(
    db: Db, manifest: Manifest, now: datetime, lookback: timedelta = LOOKBACK
) -> dict[str, list[datetime]]:
    """Each running job's missing slots (see the module doc); two queries in all."""
    jobs = [j for j in manifest.jobs if not j.paused]
    since = now - lookback
    async with db.transaction() as tx:
        rows = await tx.fetch(_DONE, [j.name for j in jobs], since)
        found = await pauses.overlapping(tx, [j.name for j in jobs], since, now)
    by_name = {r["job"]: r for r in rows}
    out: dict[str, list[datetime]] = {}
    for job in jobs:
        r = by_name.get(job.name)
        if r is None or r["first"] is None:  # never dispatched or run: nothing owed yet
            out[job.name] = []
            continue
        first = max(r["first"], since)
        out[job.name] = missing_slots(job, first, set(r["done"]), found[job.name], now)
    return out


#: A queue's depth by state (the local queue: ready, delayed, leased; Cloudflare: backlog).
Depth = Callable[[], Awaitable[Mapping[str, int | None]]]


def local_depth(queue: PgQueue) -> Depth:
    async def depth() -> Mapping[str, int | None]:
        d = await queue.depth()
        return {"ready": d.ready, "delayed": d.delayed, "leased": d.leased}

    return depth


async def refresh(
    metrics: Metrics, db: Db, queue: str, depth: Depth, manifest: Manifest, now: datetime
) -> None:
    for state, count in (await depth()).items():
        if count is not None:
            metrics.depth.labels(queue=queue, state=state).set(count)
    for job, slots in (await missing_by_job(db, manifest, now)).items():
        metrics.missing.labels(job=job).set(len(slots))
        age = (now - min(slots)).total_seconds() if slots else 0.0
        metrics.missing_age.labels(job=job).set(age)


async def refresh_every(
    seconds: float,
    metrics: Metrics,
    db: Db,
    queue: str,
    depth: Depth,
    manifest: Manifest,
    clock: Clock,
    stop: asyncio.Event,
) -> None:
    """Refresh the gauges every ``seconds`` until ``stop`` is set."""
    while not stop.is_set():
        try:
            await refresh(metrics, db, queue, depth, manifest, clock())
        except JobFailed as err:
            log.warning("metrics refresh failed: %s", err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
