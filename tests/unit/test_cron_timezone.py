"""`cronwright cron --timezone ZONE`: a cron read on a zone's clock, as a job's
``timezone:`` reads it, with its next slots in that zone and what DST does to them."""

from __future__ import annotations

import pytest

from engine.app.cli import main


def cron(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["cron", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cron_with_a_timezone_lists_slots_on_its_clock_and_the_spring_gap_shift(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cron(
        capsys, "30 2 * * *", "--timezone", "Europe/Paris", "--at", "2026-03-27T12:00:00Z",
        "--next", "3",
    ) == (
        0,
        "expression  30 2 * * *\n"
        "canonical   30 2 * * *\n"
        "means       at 02:30 Europe/Paris\n"
        "next        2026-03-28T02:30+01:00 Sat  (2026-03-28T01:30Z)\n"
        "next        2026-03-29T03:00+02:00 Sun  (2026-03-29T01:00Z)  DST gap: the cron's time"
        " did not exist that day; it runs as the gap ends\n"
        "next        2026-03-30T02:30+02:00 Mon  (2026-03-30T00:30Z)\n",
        "",
    )  # fmt: skip


def test_cron_with_a_timezone_reads_a_time_without_offset_on_that_clock_and_notes_the_overlap(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 01:00 in Paris is 23:00 UTC the day before: the next 02:30 is the same morning.
    assert cron(
        capsys, "30 2 * * *", "--timezone", "Europe/Paris", "--at", "2026-10-24T01:00",
        "--next", "2",
    ) == (
        0,
        "expression  30 2 * * *\n"
        "canonical   30 2 * * *\n"
        "means       at 02:30 Europe/Paris\n"
        "next        2026-10-24T02:30+02:00 Sat  (2026-10-24T00:30Z)\n"
        "next        2026-10-25T02:30+02:00 Sun  (2026-10-25T00:30Z)  DST overlap: this time"
        " occurs twice that day; it runs the first time\n",
        "",
    )  # fmt: skip


def test_cron_without_a_timezone_still_reads_a_time_without_offset_as_utc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cron(capsys, "30 2 * * *", "--at", "2026-10-24T01:00", "--next", "1") == (
        0,
        "expression  30 2 * * *\n"
        "canonical   30 2 * * *\n"
        "means       at 02:30 UTC\n"
        "next        2026-10-24T02:30Z Sat\n",
        "",
    )


@pytest.mark.parametrize(
    ("zone", "hint"),
    [
        ("Europe/Pari", "did you mean Europe/Paris, Europe/Madrid, Europe/Zurich?"),
        ("utc", "did you mean UTC?"),
        ("Mars/Olympus", "write an IANA name such as Europe/Berlin"),
    ],
)
def test_cron_with_an_unknown_timezone_is_bad_input_naming_the_closest_zones(
    capsys: pytest.CaptureFixture[str], zone: str, hint: str
) -> None:
    assert cron(capsys, "30 2 * * *", "--timezone", zone) == (
        2,
        "",
        f"error: --timezone: unknown time zone '{zone}'; {hint}\n",
    )
