"""The one sane range of slots (1970-01-01T00:00:00Z to a year after now), refused at every
entry: a message body, and each command's slot option (exit 2, no traceback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.core.errors import MessageError
from engine.core.times import slot_out_of_range
from engine.runtime.messages import parse
from tests.unit.test_messages import MANIFEST

NOW = datetime(2026, 10, 31, 10, 37, 12, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("slot", "problem"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), None),
        (datetime(2026, 10, 31, 10, tzinfo=UTC), None),
        (NOW + timedelta(days=366), None),
        (datetime(1970, 1, 1, 5, tzinfo=None), None),  # naive: taken as UTC
        (
            datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
            "1969-12-31T23:59:00Z is before 1970-01-01T00:00:00Z, the earliest slot",
        ),
        (
            datetime(1, 1, 1, tzinfo=UTC),
            "0001-01-01T00:00:00Z is before 1970-01-01T00:00:00Z, the earliest slot",
        ),
        (
            NOW + timedelta(days=366, seconds=1),
            "2027-11-01T10:37:13Z is more than a year after now (2026-10-31T10:37:12Z)",
        ),
        (
            datetime.max.replace(tzinfo=UTC),
            "9999-12-31T23:59:59Z is more than a year after now (2026-10-31T10:37:12Z)",
        ),
    ],
)
def test_a_slot_is_sane_from_the_epoch_to_a_year_after_now(
    slot: datetime, problem: str | None
) -> None:
    assert slot_out_of_range(slot, NOW) == problem


@pytest.mark.parametrize(
    ("scheduled_for", "reason"),
    [
        (
            "0001-01-01T00:00:00Z",
            "'scheduledFor' 0001-01-01T00:00:00Z is before 1970-01-01T00:00:00Z, the earliest"
            " slot; give a time from 1970-01-01T00:00:00Z to a year after now",
        ),
        (
            "9999-12-31T23:00:00Z",
            "'scheduledFor' 9999-12-31T23:00:00Z is more than a year after now"
            " (2026-10-31T10:37:12Z); give a time from 1970-01-01T00:00:00Z to a year after now",
        ),
    ],
)
def test_a_message_whose_slot_is_out_of_range_is_refused_with_the_reason(
    scheduled_for: str, reason: str
) -> None:
    body = {"type": "analytics.aggregate-hourly", "scheduledFor": scheduled_for}
    with pytest.raises(MessageError) as caught:
        parse(body, MANIFEST, now=NOW)
    assert str(caught.value) == reason


def test_a_slot_written_in_digits_of_another_script_is_not_an_iso_time() -> None:
    body = {"type": "analytics.aggregate-hourly", "scheduledFor": "٢٠٢٦-10-31T10:00:00Z"}
    with pytest.raises(MessageError) as caught:
        parse(body, MANIFEST, now=NOW)
    assert str(caught.value) == (
        "'scheduledFor' '٢٠٢٦-10-31T10:00:00Z' is not an ISO 8601 UTC time like"
        " 2026-10-31T10:00:00Z"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 100_000, "message body is not JSON we can read (nested too deeply)"),
        (
            '{"type": ' + "9" * 5000 + "}",
            "message body is not JSON we can read (Exceeds the limit (4300 digits) for integer"
            " string conversion: value has 5000 digits; use sys.set_int_max_str_digits() to"
            " increase the limit)",
        ),
    ],
)
def test_json_python_cannot_read_is_a_message_error_not_a_crash(body: str, reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse(body, MANIFEST, now=NOW)
    assert str(caught.value) == reason


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


SLOT_OPTIONS = [
    ["render", "aggregate-hourly", "--at"],
    ["run", "aggregate-hourly", "--at"],
    ["enqueue", "aggregate-hourly", "--transport", "postgres", "--at"],
    ["backfill", "aggregate-hourly", "--to", "2026-10-01T00:00:00Z", "--from"],
    ["backfill", "aggregate-hourly", "--from", "2026-10-01T00:00:00Z", "--to"],
    ["slots", "aggregate-hourly", "--to", "2026-10-01T00:00:00Z", "--from"],
    ["slots", "aggregate-hourly", "--from", "2026-10-01T00:00:00Z", "--to"],
]


@pytest.mark.parametrize("command", SLOT_OPTIONS, ids=lambda c: f"{c[0]} {c[-1]}")
def test_every_slot_option_refuses_a_time_before_1970_with_exit_2_and_one_error_line(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as caught:
        main(["-m", str(REPO / "jobs.yaml"), *command, "0001-01-01T00:00:00Z"])
    assert caught.value.code == 2
    assert _one_line(capsys.readouterr().err) == (
        f"cronwright {command[0]}: error: argument {command[-1]}: 0001-01-01T00:00:00Z is before"
        " 1970-01-01T00:00:00Z, the earliest slot; give a time from 1970-01-01T00:00:00Z to a"
        " year after now"
    )


@pytest.mark.parametrize("command", SLOT_OPTIONS, ids=lambda c: f"{c[0]} {c[-1]}")
def test_every_slot_option_refuses_a_time_more_than_a_year_ahead(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["-m", str(REPO / "jobs.yaml"), *command, "9999-12-31T23:00:00Z"])
    assert caught.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(
        f"cronwright {command[0]}: error: argument {command[-1]}: 9999-12-31T23:00:00Z is more"
        " than a year after now ("
    )
    assert line.endswith("); give a time from 1970-01-01T00:00:00Z to a year after now")


def test_a_time_whose_utc_instant_is_before_year_1_is_refused_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["render", "aggregate-hourly", "--at", "0001-01-01T00:00:00+05:00"])
    assert caught.value.code == 2
    assert _one_line(capsys.readouterr().err) == (
        "cronwright render: error: argument --at: '0001-01-01T00:00:00+05:00' is outside the"
        " years 1 to 9999 in UTC"
    )
