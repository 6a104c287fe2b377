"""The per-message metric record: its JSON line and its Analytics Engine data point."""

from __future__ import annotations

import io
import json

from engine.runtime.metrics import (
    BLOBS,
    DOUBLES,
    Collect,
    JsonLines,
    MetricRecord,
    to_analytics_engine,
)
from engine.runtime.outcome import STATUSES

ACK = MetricRecord(
    queue="mauntic-analytics-jobs",
    message_id="m-1",
    status="succeeded",
    event_type="analytics.aggregate-hourly",
    duration_ms=12.5,
    attempt=2,
    slot="2026-10-31T10:00:00Z",
    rows=42,
)
POISON = MetricRecord(
    queue="mauntic-analytics-jobs",
    message_id="m-2",
    status="dead_lettered",
    event_type=None,
    duration_ms=0.25,
    attempt=1,
    slot=None,
    rows=None,
    error_class="invalid_message",
)


def test_json_line_has_the_original_fields_plus_attempt_slot_rows_and_error_class() -> None:
    assert json.loads(ACK.to_json()) == {
        "queue": "mauntic-analytics-jobs",
        "messageId": "m-1",
        "status": "succeeded",
        "eventType": "analytics.aggregate-hourly",
        "durationMs": 12.5,
        "attempt": 2,
        "slot": "2026-10-31T10:00:00Z",
        "rows": 42,
        "errorClass": None,
    }


def test_json_lines_sink_writes_one_line_per_record() -> None:
    stream = io.StringIO()
    sink = JsonLines(stream)
    sink.emit(ACK)
    sink.emit(POISON)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["messageId"] for line in lines] == ["m-1", "m-2"]
    assert stream.getvalue().endswith("\n")


def test_statuses_are_ack_retry_dead_letter_duplicate_paused_and_superseded() -> None:
    assert STATUSES == (
        "succeeded",
        "retry",
        "dead_lettered",
        "duplicate",
        "paused",
        "superseded",
    )


def test_analytics_engine_point_puts_each_field_at_its_documented_position() -> None:
    assert BLOBS == ("queue", "status", "eventType", "messageId", "slot", "errorClass")
    assert DOUBLES == ("durationMs", "attempt", "rows")
    assert to_analytics_engine(ACK) == {
        "blobs": [
            "mauntic-analytics-jobs",
            "succeeded",
            "analytics.aggregate-hourly",
            "m-1",
            "2026-10-31T10:00:00Z",
            "",
        ],
        "doubles": [12.5, 2.0, 42.0],
        "indexes": ["analytics.aggregate-hourly"],
    }


def test_analytics_engine_point_writes_missing_values_as_empty_and_zero() -> None:
    assert to_analytics_engine(POISON) == {
        "blobs": ["mauntic-analytics-jobs", "dead_lettered", "", "m-2", "", "invalid_message"],
        "doubles": [0.25, 1.0, 0.0],
        "indexes": [""],
    }


def test_analytics_engine_index_is_cut_to_96_bytes_on_a_character_boundary() -> None:
    record = MetricRecord(
        queue="q",
        message_id="m",
        status="retry",
        event_type="é" * 60,  # 120 bytes
        duration_ms=1.0,
        attempt=1,
        slot=None,
        rows=None,
    )
    (index,) = to_analytics_engine(record)["indexes"]
    assert index == "é" * 48
    assert len(index.encode()) == 96


def test_collect_sink_keeps_records_in_order() -> None:
    sink = Collect()
    sink.emit(ACK)
    sink.emit(POISON)
    assert sink.records == [ACK, POISON]
