"""Prometheus metrics and ``/healthz`` for ``serve`` and ``consume`` (both transports).

Each process has its own registry (never the global one). Runs by job and status and the
run-duration histogram come from the executor's metric records; queue depth and each
job's missing slots (how many, and the oldest one's age) are refreshed on a timer. A slot
is missing by the scheduling core's one rule (:mod:`engine.runtime.scheduling`): the
gauges read the same :class:`SlotBook` the reconciler of the process acts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.adapters.pgqueue import PgQueue
from engine.core.model import Manifest
from engine.runtime.metrics import MetricRecord, MetricsSink
from engine.runtime.scheduling import SlotBook

log = logging.getLogger(__name__)


class Metrics:
    """The registry and its metrics; also a :class:`MetricsSink` for the executor."""

    def __init__(self, manifest: Manifest, *, forward: MetricsSink | None = None) -> None:
        self.registry = CollectorRegistry()
        self._forward = forward
        # Labelled by job name, like the missing-slot gauges; a message of no known
        # type (poison) counts under "unknown", so bad input cannot add label values.
        self._names = {j.type: j.name for j in manifest.jobs}
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.runs = Counter(
            "cronwright_runs", "Deliveries by job and outcome status", ["job", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "cronwright_run_duration_seconds", "Delivery duration", ["job"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 1800),
            registry=self.registry,
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

    def emit(self, record: MetricRecord) -> None:
        job = self._names.get(record.event_type or "", "unknown")
        key = (job, record.status)
        children = self._children.get(key)
        if children is None:  # labels() costs a lock and a lookup: once per job and status
            children = (
                self.runs.labels(job=job, status=record.status),
                self.duration.labels(job=job),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(record.duration_ms / 1000)
        if self._forward is not None:
            self._forward.emit(record)

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
    for job in book.jobs:
        if job.paused:
            continue
        slots = book.missing(job)
        metrics.missing.labels(job=job.name).set(len(slots))
        age = (now - slots[0]).total_seconds() if slots else 0.0
        metrics.missing_age.labels(job=job.name).set(age)


@asynccontextmanager
async def http_endpoint(
    metrics: Metrics, port: int, host: str = "0.0.0.0"
) -> AsyncIterator[asyncio.Server]:
    """``GET /metrics`` (Prometheus text) and ``GET /healthz`` on ``port``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 10)
            with contextlib.suppress(TimeoutError):  # headers are not needed
                while (await asyncio.wait_for(reader.readline(), 10)).strip():
                    pass
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) > 1 else ""
            status, ctype, body = _route(metrics, path)
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode("latin-1") + body)
            await asyncio.wait_for(writer.drain(), 10)
        except (OSError, TimeoutError) as exc:
            log.debug("metrics request failed: %s", exc)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, host, port)
    try:
        yield server
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


def _route(metrics: Metrics, path: str) -> tuple[str, str, bytes]:
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, metrics.exposition()
    if path == "/healthz":
        return "200 OK", "text/plain; charset=utf-8", b"ok\n"
    return "404 Not Found", "text/plain; charset=utf-8", b"not found\n"


def bound_port(server: asyncio.Server) -> int:
    """The port actually bound (for ``--metrics-port 0``)."""
    port: int = server.sockets[0].getsockname()[1]
    return port
