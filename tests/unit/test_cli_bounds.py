"""Every time and number option of the CLI is bounded: a hostile value (nan, inf, a
negative, 1e309, year 1 or 9999, garbage) is refused by argparse with exit 2 and one line
naming the option, never a traceback, and before anything connects (DATABASE_URL points
at a port where nothing listens: a command that got that far would exit 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.app.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
MANIFEST = str(REPO / "jobs.yaml")
UNREACHABLE = "postgresql://x@127.0.0.1:1/x"
BIGINT_OVER = str(2**63)
SLOT_HINT = "; give a time from 1970-01-01T00:00:00Z to a year after now"


@pytest.fixture(autouse=True)
def unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``cronwright -m jobs.yaml ARGV`` exits 2 with one line on stderr: that line."""
    with pytest.raises(SystemExit) as caught:
        main(["-m", MANIFEST, *argv])
    err = capsys.readouterr().err
    assert caught.value.code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def name(case: tuple[str, ...]) -> str:
    return " ".join(case)


def prog(argv: tuple[str, ...]) -> str:
    """The program argparse names in a refusal: ``cronwright COMMAND [SUBCOMMAND]``."""
    return " ".join(argv[:2]) if argv[0] == "dead-letters" else argv[0]


# Where a listing of slots starts: the slots' one range (1970 to a year after now).
SLOT_STARTS = [
    ("schedule", "--at"),
    ("cron", "0 * * * *", "--at"),
    ("cron", "0 * * * *", "--timezone", "Asia/Tokyo", "--at"),
    ("cron", "0 * * * *", "--timezone", "America/New_York", "--at"),
]


@pytest.mark.parametrize("command", SLOT_STARTS, ids=name)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z is before 1970-01-01T00:00:00Z, the earliest slot",
        ),
        (
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00Z is before 1970-01-01T00:00:00Z, the earliest slot",
        ),
        ("1969-12-31T23:59:00Z", "1969-12-31T23:59:00Z is before 1970-01-01T00:00:00Z"),
        ("9999-12-31T23:59:00", "9999-12-31T23:59:00Z is more than a year after now ("),
        ("9999-12-31T23:59:00Z", "9999-12-31T23:59:00Z is more than a year after now ("),
    ],
)
def test_every_option_where_slots_start_refuses_a_time_outside_the_slots_range(
    command: tuple[str, ...], value: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused([*command, value], capsys)
    assert line.startswith(f"cronwright {command[0]}: error: argument --at: {problem}")
    assert line.endswith(SLOT_HINT)


# Every option that takes a time, the slot options of tests/unit/test_slot_range.py aside.
TIME_OPTIONS = [
    *SLOT_STARTS,
    ("dead-letters", "list", "--since"),
    ("dead-letters", "purge", "--before"),
]


@pytest.mark.parametrize("command", TIME_OPTIONS, ids=name)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("garbage", "'garbage' is not an ISO 8601 time (2026-10-31T10:00:00Z)"),
        ("nan", "'nan' is not an ISO 8601 time (2026-10-31T10:00:00Z)"),
        ("-infinity", "'-infinity' is not an ISO 8601 time (2026-10-31T10:00:00Z)"),
        (
            "0001-01-01T00:00:00+05:00",
            "'0001-01-01T00:00:00+05:00' is outside the years 1 to 9999 in UTC",
        ),
        (
            "9999-12-31T23:59:00-05:00",
            "'9999-12-31T23:59:00-05:00' is outside the years 1 to 9999 in UTC",
        ),
    ],
)
def test_every_time_option_refuses_what_is_not_a_time_in_years_1_to_9999_utc(
    command: tuple[str, ...], value: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused([*command[:-1], f"{command[-1]}={value}"], capsys) == (
        f"cronwright {prog(command)}: error: argument {command[-1]}: {problem}"
    )


# Seconds options and the least each takes: 0 where 0 means at once (a grace, a drain),
# 1 for a lease (0 would claim and lose every message in a busy loop).
SECONDS_OPTIONS = [
    *(
        (command, option, least)
        for command in ("serve", "consume")
        for option, least in (
            ("--grace-seconds", 0),
            ("--drain-seconds", 0),
            ("--lease-seconds", 1),
        )
    ),
    ("reconcile", "--grace-seconds", 0),
]


@pytest.mark.parametrize(("command", "option", "least"), SECONDS_OPTIONS, ids=str)
@pytest.mark.parametrize(
    "value", ["nan", "inf", "-inf", "1e309", "-1", "garbage", "", "0x10", "below"]
)
def test_every_seconds_option_refuses_what_is_not_a_finite_number_from_its_least(
    command: str, option: str, least: int, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    value = str(least - 1) if value == "below" else value
    assert refused([command, f"{option}={value}"], capsys) == (
        f"cronwright {command}: error: argument {option}: {value!r} is not a number of"
        f" seconds ({least} or more)"
    )


@pytest.mark.parametrize(("command", "option", "least"), SECONDS_OPTIONS, ids=str)
@pytest.mark.parametrize("value", ["86400.5", "1e308", "99999999999999999999"])
def test_every_seconds_option_refuses_more_than_a_day(
    command: str, option: str, least: int, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused([command, option, value], capsys) == (
        f"cronwright {command}: error: argument {option}: {value!r} is more than the 86400"
        " seconds allowed"
    )


# Whole-number options: the command up to the option, the option's name as argparse gives
# it, the least, the most and what it counts (in the refusal).
WHOLE_OPTIONS = [
    (("serve", "--reconcile-interval"), "--reconcile-interval", 0, 86400, " seconds"),
    (("consume", "--reconcile-interval"), "--reconcile-interval", 0, 86400, " seconds"),
    (("serve", "--consumers"), "--consumers/--concurrency", 1, 250, ""),
    (("consume", "--concurrency"), "--consumers/--concurrency", 1, 250, ""),
    (
        ("backfill", "aggregate-hourly", "--from", "2026-10-01T00:00:00Z", "--to",
         "2026-10-02T00:00:00Z", "--concurrency"),
        "--concurrency", 1, 250, "",
    ),
    (("prune", "--older-than"), "--older-than", 0, 36500, " days"),
    (("runs", "--limit"), "--limit", 1, 2**63 - 1, ""),
    (("dead-letters", "replay"), "ID", 1, 2**63 - 1, ""),
    (("consume", "--max-batches"), "--max-batches", 1, 2**63 - 1, ""),
    (("schedule", "--next"), "--next", 1, 2**63 - 1, ""),
    (("cron", "0 * * * *", "--next"), "--next", 1, 2**63 - 1, ""),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "option", "least", "most", "unit"), WHOLE_OPTIONS, ids=str)
@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-1", "1.5", "garbage", "٣", "below"])
def test_every_whole_number_option_refuses_what_is_not_a_whole_number_from_its_least(
    argv: tuple[str, ...],
    option: str,
    least: int,
    most: int,
    unit: str,
    value: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = str(least - 1) if value == "below" else value
    of = f" of{unit}" if unit else ""
    assert refused([*argv, value], capsys) == (
        f"cronwright {prog(argv)}: error: argument {option}: {value!r} is not a whole"
        f" number{of} ({least} or more)"
    )


def past_the_most(option: str, most: int) -> list[str]:
    """What a test tries past an option's most: one more, and for an option whose lost
    bound would cost no more than a refused connection, a bigint and 5,000 digits too.
    Without its bound, ``--consumers 2**63`` allocates as many pool slots (it did: 24 GB),
    and ``--next`` past a bigint lists slots up to the year 9999."""
    if option == "--next":
        return []
    if option in ("--consumers/--concurrency", "--concurrency"):
        return [str(most + 1)]
    return [str(most + 1), BIGINT_OVER, "9" * 5000]


@pytest.mark.parametrize(
    ("argv", "option", "most", "unit", "value"),
    [
        (argv, option, most, unit, value)
        for argv, option, _, most, unit in WHOLE_OPTIONS
        for value in past_the_most(option, most)
    ],
    ids=str,
)
def test_every_whole_number_option_refuses_more_than_its_most(
    argv: tuple[str, ...],
    option: str,
    most: int,
    unit: str,
    value: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert refused([*argv, value], capsys) == (
        f"cronwright {prog(argv)}: error: argument {option}: {value!r} is more than the"
        f" {most}{unit} allowed"
    )


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["serve", "--grace-seconds", "0"], "grace_seconds", 0.0),
        (["serve", "--grace-seconds", "86400"], "grace_seconds", 86400.0),
        (["serve", "--drain-seconds", "0"], "drain_seconds", 0.0),
        (["serve", "--drain-seconds", "86400"], "drain_seconds", 86400.0),
        (["serve", "--lease-seconds", "1"], "lease_seconds", 1.0),
        (["consume", "--lease-seconds", "2.5"], "lease_seconds", 2.5),
        (["serve", "--reconcile-interval", "0"], "reconcile_interval", 0),
        (["serve", "--reconcile-interval", "86400"], "reconcile_interval", 86400),
        (["serve", "--consumers", "250"], "consumers", 250),
        (["reconcile", "--grace-seconds", "600"], "grace_seconds", 600.0),
        (["prune", "--older-than", "0"], "older_than", 0),
        (["prune", "--older-than", "36500"], "older_than", 36500),
        (["runs", "--limit", str(2**63 - 1)], "limit", 2**63 - 1),
        (["schedule", "--at", "1970-01-01T00:00:00Z"], "at", datetime(1970, 1, 1, tzinfo=UTC)),
        (["cron", "* * * * *", "--at", "1970-01-01T00:00:00"], "at", datetime(1970, 1, 1)),
        (
            ["dead-letters", "purge", "--before", "2100-01-01T00:00:00Z"],
            "before",
            datetime(2100, 1, 1, tzinfo=UTC),
        ),
        (
            ["dead-letters", "list", "--since", "0001-01-01T00:00:00Z"],
            "since",
            datetime(1, 1, 1, tzinfo=UTC),
        ),
    ],
    ids=str,
)
def test_the_ends_of_each_range_are_accepted(argv: list[str], dest: str, value: object) -> None:
    assert getattr(build_parser().parse_args(argv), dest) == value


def test_a_listing_of_slots_stops_at_the_end_of_the_calendar_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # New York's last yearly 23:59 of 9999 is in the year 10000 in UTC.
    argv = ["cron", "59 23 31 12 *", "--timezone", "America/New_York", "--next", "8000"]
    assert main(["-m", MANIFEST, *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "next        9998-12-31T23:59-05:00 Thu  (9999-01-01T04:59Z)",
        "next        none before the year 10000",
    ]


def test_a_job_s_next_slots_stop_at_the_end_of_the_calendar_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")  # schedule reads runtime pauses only with it
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "close.sql").write_text("SELECT {{ slot }};\n")
    (tmp_path / "jobs.yaml").write_text(
        'version: 1\njobs:\n  close:\n    cron: "59 23 31 12 *"\n'
        "    timezone: America/New_York\n    sql: sql/close.sql\n"
    )
    assert main(["-m", str(tmp_path / "jobs.yaml"), "schedule", "--next", "8000"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "  next     9999-01-01T04:59Z Fri"
