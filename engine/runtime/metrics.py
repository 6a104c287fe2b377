"""One metric record per message outcome: the old ``logQueueMetric`` fields (queue,
messageId, status, eventType, durationMs) plus attempt, slot, rows and errorClass.

It is written as one JSON line, and maps to a Workers Analytics Engine data point whose
positions are fixed (queries say ``blob2``, ``double1``):

    blobs   = [queue, status, eventType, messageId, slot, errorClass]   # blob1..blob6
    doubles = [durationMs, attempt, rows]                               # double1..double3
    indexes = [eventType]                                               # the sampling key

Missing values become ``""`` in blobs and ``0`` in doubles (Analytics Engine has no null).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from engine.runtime.outcome import Status

BLOBS = ("queue", "status", "eventType", "messageId", "slot", "errorClass")
DOUBLES = ("durationMs", "attempt", "rows")
INDEX = "eventType"
# Analytics Engine's limit on the index.
MAX_INDEX_BYTES = 96


@dataclass(frozen=True, kw_only=True)
class MetricRecord:
    queue: str
    message_id: str
    status: Status
    event_type: str | None  # the message type
    duration_ms: float
    attempt: int
    slot: str | None  # ISO 8601 UTC
    rows: int | None
    error_class: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The wire form, with the original record's camelCase names."""
        return {
            "queue": self.queue,
            "messageId": self.message_id,
            "status": self.status,
            "eventType": self.event_type,
            "durationMs": self.duration_ms,
            "attempt": self.attempt,
            "slot": self.slot,
            "rows": self.rows,
            "errorClass": self.error_class,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))


def _index(value: str) -> str:
    raw = value.encode("utf-8")[:MAX_INDEX_BYTES]
    return raw.decode("utf-8", "ignore")


def to_analytics_engine(record: MetricRecord) -> dict[str, list[Any]]:
    """The record as ``writeDataPoint({blobs, doubles, indexes})`` arguments."""
    data = record.as_dict()
    return {
        "blobs": ["" if data[k] is None else str(data[k]) for k in BLOBS],
        "doubles": [float(data[k] or 0) for k in DOUBLES],
        "indexes": [_index(record.event_type or "")],
    }


class MetricsSink(Protocol):
    def emit(self, record: MetricRecord) -> None: ...


class JsonLines:
    """Writes each record as one JSON line and flushes, so a crash loses none."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def emit(self, record: MetricRecord) -> None:
        self._stream.write(record.to_json() + "\n")
        self._stream.flush()


class Collect:
    """Keeps records in memory (tests, benchmarks, the CLI's summary)."""

    def __init__(self) -> None:
        self.records: list[MetricRecord] = []

    def emit(self, record: MetricRecord) -> None:
        self.records.append(record)
