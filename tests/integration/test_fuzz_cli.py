"""Fuzzing the time options of the CLI, in-process through engine.app.cli.main: any
string as ``render --at``, ``schedule --at`` and ``cron --at`` (with and without
``--timezone``), with no database, and as ``run --at``, ``enqueue --at``, ``backfill
--from/--to``, ``slots --from/--to``, ``dead-letters list --since`` and ``dead-letters
purge --before`` with a real Postgres. Every run ends with exit 0, 1 or 2; an exception
escaping main (a traceback for a user) fails."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.app.cli import main

pytestmark = pytest.mark.fuzz

MANIFEST = str(Path(__file__).resolve().parents[2] / "jobs.yaml")
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
near = st.integers(-72 * 60, 72 * 60).map(lambda m: NOW + timedelta(minutes=m))
anywhere = st.datetimes(timezones=st.just(UTC) | offsets | st.none())
# Within days of datetime's first and last, where a zone's offset or a look back overflows.
ends = st.datetimes(max_value=datetime(1, 1, 3), timezones=st.just(UTC) | offsets | st.none()) | (
    st.datetimes(min_value=datetime(9999, 12, 29), timezones=st.just(UTC) | offsets | st.none())
)
times = near | anywhere | ends
# What an operator (or a script gone wrong) might type.
at_strings = (
    times.map(lambda t: t.isoformat())
    | times.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    | times.map(lambda t: t.strftime("%Y-%m-%d"))
    | times.map(lambda t: t.strftime("%Y%m%dT%H%M%S"))
    | st.from_regex(r"-?\d{1,6}-\d{1,2}-\d{1,2}(T\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,9})?)?)?[Z+-]?.*")
    | st.sampled_from(["", " ", "now", "infinity", "-infinity", "0001-01-01T00:00:00Z"])
    | st.text()
    | st.text(st.characters(codec="utf-8", exclude_categories=()))  # surrogates, as argv
)


def cli(*argv: str) -> tuple[int, str]:
    """``cronwright -m jobs.yaml ARGV``: the exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(["-m", MANIFEST, *argv])
        except SystemExit as exc:  # argparse's exit for a bad option value
            code = int(exc.code or 0)
    return code, err.getvalue()


def check(code: int, err: str) -> None:
    assert code in (0, 1, 2), err
    assert "Traceback" not in err


@given(at=at_strings)
def test_render_ends_in_0_or_2_for_any_at(at: str) -> None:
    code, err = cli("render", "aggregate-hourly", "--at", at)
    assert code in (0, 2), err
    check(code, err)


@pytest.fixture
def no_database() -> Iterator[None]:
    """`schedule` reads runtime pauses when DATABASE_URL is set: not here."""
    saved = os.environ.pop("DATABASE_URL", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["DATABASE_URL"] = saved


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=at_strings)
def test_schedule_ends_in_0_or_2_for_any_at(no_database: None, at: str) -> None:
    code, err = cli("schedule", "--at", at)
    assert code in (0, 2), err
    check(code, err)


# On UTC's clock, and on zones east and west of it (a naive --at is read in the zone).
CRONS = {
    "UTC": ["cron", "59 23 31 12 *"],
    "Asia/Tokyo": ["cron", "0 * * * *", "--timezone", "Asia/Tokyo"],
    "America/New_York": ["cron", "59 23 * * *", "--timezone", "America/New_York"],
}


@given(at=at_strings, zone=st.sampled_from(sorted(CRONS)))
def test_cron_ends_in_0_or_2_for_any_at_in_any_zone(at: str, zone: str) -> None:
    code, err = cli(*CRONS[zone], "--at", at)
    assert code in (0, 2), err
    check(code, err)


@pytest.fixture
def database(pg_dsn: str) -> Iterator[None]:
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = pg_dsn
    try:
        yield
    finally:
        if saved is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = saved


ANCHOR_FROM = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
ANCHOR_TO = "1970-01-01T06:00:00Z"  # any sane --from after it is an empty range


# The fuzzed value in each place; the other end of a range is an anchor that keeps every
# range the fuzzer can reach small enough to list.
COMMANDS = {
    "run --at": lambda at: ["run", "aggregate-hourly", "--at", at],
    "enqueue --at": lambda at: [
        "enqueue", "aggregate-hourly", "--transport", "postgres", "--at", at
    ],
    "backfill --from": lambda at: [
        "backfill", "aggregate-hourly", "--dry-run", "--from", at, "--to", ANCHOR_TO
    ],
    "backfill --to": lambda at: [
        "backfill", "aggregate-hourly", "--dry-run", "--from", ANCHOR_FROM, "--to", at
    ],
    "slots --from": lambda at: ["slots", "aggregate-hourly", "--from", at, "--to", ANCHOR_TO],
    "slots --to": lambda at: ["slots", "aggregate-hourly", "--from", ANCHOR_FROM, "--to", at],
    "dead-letters list --since": lambda at: ["dead-letters", "list", "--since", at],
    "dead-letters purge --before": lambda at: ["dead-letters", "purge", "--before", at],
}  # fmt: skip


@pytest.mark.postgres
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(at=at_strings, command=st.sampled_from(sorted(COMMANDS)))
def test_database_commands_end_in_0_1_or_2_for_any_time_option(
    database: None, at: str, command: str
) -> None:
    check(*cli(*COMMANDS[command](at)))
