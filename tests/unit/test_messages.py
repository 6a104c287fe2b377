"""Queue messages -> (job, slot), and the exact reason for every message that cannot run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.core.errors import MessageError, SlotNotDue
from engine.core.model import Job, Manifest, Period, Plan, Queue, Window, Worker
from engine.runtime.messages import Message, body_text, parse, peek_type

HOURLY = Job(
    name="aggregate-hourly",
    type="analytics.aggregate-hourly",
    cron="0 * * * *",
    sql="sql/aggregate_hourly.sql",
    window=Window(period=Period.HOUR, offset=-1),
)
RESET = Job(
    name="warmup-daily-reset",
    type="analytics.warmup-daily-reset",
    cron="0 0 * * *",
    sql="sql/warmup_domains.sql",
    window=Window(period=Period.DAY),
)
MONTHLY = Job(
    name="monthly-usage-summary",
    type="analytics.monthly-usage-summary",
    cron="0 3 1 * *",
    sql="sql/monthly_usage_summary.sql",
    window=Window(period=Period.MONTH, offset=-1),
)
MANIFEST = Manifest(
    path="jobs.yaml",
    worker=Worker(name="w", compatibility_date="2026-04-01"),
    plan=Plan.PAID,
    trigger_budget=10,
    queue=Queue(name="jobs", binding="JOBS", dead_letter_queue="jobs-dlq"),
    bucket=None,
    dataset=None,
    environments=(),
    jobs=(HOURLY, RESET, MONTHLY),
)
NOW = datetime(2026, 10, 31, 10, 37, 12, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_message_with_a_slot_resolves_to_its_job_and_slot() -> None:
    body = '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:00:00Z"}'
    assert parse(body, MANIFEST, now=NOW) == Message(
        type="analytics.aggregate-hourly", job=HOURLY, slot=at(2026, 10, 31, 10, 0)
    )


def test_a_rerun_request_id_travels_with_the_message() -> None:
    body = (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:00:00Z",'
        ' "rerun": "cli-7f3a"}'
    )
    assert parse(body, MANIFEST, now=NOW) == Message(
        type="analytics.aggregate-hourly",
        job=HOURLY,
        slot=at(2026, 10, 31, 10, 0),
        rerun="cli-7f3a",
    )


@pytest.mark.parametrize(
    "scheduled_for",
    ["2026-10-31T10:00:00.000Z", "2026-10-31T10:00:00+00:00", "2026-10-31T10:00Z"],
)
def test_slot_accepts_javascript_and_offset_spellings_of_utc(scheduled_for: str) -> None:
    body = {"type": "analytics.aggregate-hourly", "scheduledFor": scheduled_for}
    assert parse(body, MANIFEST, now=NOW).slot == at(2026, 10, 31, 10, 0)


def test_bytes_body_and_correlation_id_are_accepted() -> None:
    body = (
        b'{"type":"analytics.aggregate-hourly",'
        b'"scheduledFor":"2026-10-31T09:00:00Z","correlationId":"c-1"}'
    )
    msg = parse(body, MANIFEST, now=NOW)
    assert (msg.slot, msg.correlation_id, msg.manual) == (at(2026, 10, 31, 9, 0), "c-1", False)


@pytest.mark.parametrize(
    ("job", "now", "slot"),
    [
        (HOURLY, NOW, at(2026, 10, 31, 10, 0)),
        (HOURLY, at(2026, 10, 31, 10, 0), at(2026, 10, 31, 10, 0)),
        (RESET, NOW, at(2026, 10, 31, 0, 0)),
        (MONTHLY, NOW, at(2026, 10, 1, 3, 0)),
        (MONTHLY, at(2026, 10, 1, 2, 59), at(2026, 9, 1, 3, 0)),
        (MONTHLY, at(2027, 1, 1, 0, 0), at(2026, 12, 1, 3, 0)),
    ],
)
def test_manual_enqueue_runs_the_latest_slot_at_or_before_now(
    job: Job, now: datetime, slot: datetime
) -> None:
    msg = parse({"type": job.type}, MANIFEST, now=now)
    assert (msg.job, msg.slot, msg.manual) == (job, slot, True)


POISON = [
    (b"\xff{}", "message body is not UTF-8 (invalid start byte at byte 0)"),
    ("not json", "message body is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("[1, 2]", "message body must be a JSON object, got array"),
    ('"analytics.aggregate-hourly"', "message body must be a JSON object, got string"),
    ("{}", "message has no 'type'"),
    ('{"scheduledFor": "2026-10-31T10:00:00Z"}', "message has no 'type'"),
    ('{"type": 5}', "message 'type' must be a string, got number"),
    ('{"type": null}', "message 'type' must be a string, got null"),
    ('{"type": "  "}', "message 'type' is blank"),
    (
        '{"type": "analytics.reset-warmup-daily"}',
        "unknown message type 'analytics.reset-warmup-daily';"
        " did you mean 'analytics.warmup-daily-reset'?",
    ),
    (
        '{"type": "billing.invoice"}',
        "unknown message type 'billing.invoice'; known types: analytics.aggregate-hourly,"
        " analytics.monthly-usage-summary, analytics.warmup-daily-reset",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": 1793440800000}',
        "'scheduledFor' must be a string, got number",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31 10:00:00"}',
        "'scheduledFor' '2026-10-31 10:00:00' is not an ISO 8601 UTC time like"
        " 2026-10-31T10:00:00Z",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:00:00"}',
        "'scheduledFor' '2026-10-31T10:00:00' is not an ISO 8601 UTC time like"
        " 2026-10-31T10:00:00Z",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T12:00:00+02:00"}',
        "'scheduledFor' '2026-10-31T12:00:00+02:00' is not an ISO 8601 UTC time like"
        " 2026-10-31T10:00:00Z",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-02-30T10:00:00Z"}',
        "'scheduledFor' '2026-02-30T10:00:00Z' is not an ISO 8601 UTC time like"
        " 2026-10-31T10:00:00Z",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:00:30Z"}',
        "'scheduledFor' 2026-10-31T10:00:30Z is not on a minute",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:00:00.250Z"}',
        "'scheduledFor' 2026-10-31T10:00:00.250Z is not on a minute",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T10:30:00Z"}',
        "'scheduledFor' 2026-10-31T10:30:00Z is not a slot of analytics.aggregate-hourly"
        " (cron '0 * * * *')",
    ),
    (
        '{"type": "analytics.monthly-usage-summary", "scheduledFor": "2026-10-02T03:00:00Z"}',
        "'scheduledFor' 2026-10-02T03:00:00Z is not a slot of analytics.monthly-usage-summary"
        " (cron '0 3 1 * *')",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T11:00:00Z"}',
        "'scheduledFor' 2026-10-31T11:00:00Z is in the future (now 2026-10-31T10:37:12Z)",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "correlationId": 7}',
        "'correlationId' must be a string, got number",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "rerun": true}',
        "'rerun' must be a non-empty string (a rerun request id), got boolean",
    ),
    (
        '{"type": "analytics.aggregate-hourly", "rerun": " "}',
        "'rerun' must be a non-empty string (a rerun request id), got string",
    ),
]


@pytest.mark.parametrize(("body", "reason"), POISON)
def test_poison_message_is_rejected_with_its_reason(body: str | bytes, reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse(body, MANIFEST, now=NOW)
    assert str(caught.value) == reason


def test_peek_type_finds_the_type_of_a_message_that_cannot_run() -> None:
    assert peek_type('{"type": "analytics.reset-warmup-daily"}') == "analytics.reset-warmup-daily"
    assert peek_type('{"type": 5}') is None
    assert peek_type("not json") is None


def test_body_text_keeps_undecodable_bytes_visible() -> None:
    assert body_text(b"\xff{}") == "\\xff{}"
    assert body_text({"type": "t", "a": 1}) == '{"a": 1, "type": "t"}'


def test_a_slot_just_ahead_of_our_clock_is_skew_to_wait_for_not_poison() -> None:
    now = datetime(2026, 10, 31, 10, 59, 59, 500000, tzinfo=UTC)
    body = '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T11:00:00Z"}'
    with pytest.raises(SlotNotDue) as caught:
        parse(body, MANIFEST, now=now)
    assert caught.value.due_in_seconds == 0.5
    assert str(caught.value) == (
        "'scheduledFor' 2026-10-31T11:00:00Z is in the future (now 2026-10-31T10:59:59Z)"
    )


def test_a_slot_further_ahead_than_any_clock_skew_is_poison() -> None:
    now = datetime(2026, 10, 31, 10, 54, 59, tzinfo=UTC)
    body = '{"type": "analytics.aggregate-hourly", "scheduledFor": "2026-10-31T11:00:00Z"}'
    with pytest.raises(MessageError) as caught:
        parse(body, MANIFEST, now=now)
    assert not isinstance(caught.value, SlotNotDue)
