"""Windows must end by their slot (or opt in for a slot-only template); ISO weeks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.core.model import Period, Retention, Window
from engine.manifest.loader import load
from tests.unit.test_manifest_validation import BASE, TEMPLATE, problems, write

SLOT_ONLY = "SELECT {{ slot }}, {{ window_start }};\n"

ENDS = {
    ("hour", 0): "at the next full hour",
    ("day", 0): "at the next midnight",
    ("week", 0): "at the next Monday 00:00",
    ("month", 0): "on the 1st of the next month",
    ("hour", 1): "2 hours after the slot's hour began",
    ("day", 3): "4 days after the slot's midnight",
    ("week", 2): "3 weeks after the slot's Monday 00:00",
    ("month", 1000): "1001 months after the 1st of the slot's month",
}


@pytest.mark.parametrize(("period", "offset"), sorted(ENDS))
def test_every_window_that_ends_after_its_slot_is_rejected_with_line_and_column(
    tmp_path: Path, period: str, offset: int
) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        f"    window: {{period: {period}, offset: {offset}}}\n",
    )
    col = 32 + len(period)  # the offset's value inside the flow mapping
    assert problems(tmp_path, text) == [
        f"jobs.yaml:26:{col}: jobs.nightly.window.offset: offset {offset} of period {period} "
        f"ends {ENDS[(period, offset)]}; use offset -1 for the previous {period}, or set "
        "allow_open_window: true if the template never reads window_end",
    ]


def test_window_without_an_offset_is_offset_0_and_is_rejected_at_the_window(
    tmp_path: Path,
) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n", "    window:\n      period: day\n"
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:27:7: jobs.nightly.window: offset 0 of period day ends at the next midnight; "
        "use offset -1 for the previous day, or set allow_open_window: true if the template "
        "never reads window_end",
    ]


def test_open_window_is_allowed_for_a_template_that_never_reads_window_end(
    tmp_path: Path,
) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: 0}\n    allow_open_window: true\n",
    )
    m = load(write(tmp_path, text, {"hourly.sql": TEMPLATE, "nightly.sql": SLOT_ONLY}))
    nightly = m.job_by_name("nightly")
    assert nightly is not None and nightly.allow_open_window and nightly.window.offset == 0


def test_open_window_is_rejected_when_the_template_reads_window_end(tmp_path: Path) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: 0}\n    allow_open_window: true\n",
    )
    # Read only in a branch the sample render never takes: found from the template's AST.
    templates = {
        "hourly.sql": TEMPLATE,
        "nightly.sql": "SELECT 1{% if rerun %} WHERE {{ window_end }} IS NOT NULL{% endif %};\n",
    }
    assert problems(tmp_path, text, templates) == [
        "jobs.yaml:27:24: jobs.nightly.allow_open_window: allow_open_window is set but template "
        "'sql/nightly.sql' reads window_end, which lies after the slot; read slot or "
        "window_start instead, or use offset -1 and drop allow_open_window",
    ]


def test_window_ending_at_its_slot_is_accepted(tmp_path: Path) -> None:
    for period in ("hour", "day", "week", "month"):
        text = BASE.replace("period: day, offset: -1", f"period: {period}, offset: -1")
        assert load(write(tmp_path, text)).jobs[1].window.period is Period(period)


def test_week_window_is_the_iso_week_from_monday_midnight() -> None:
    # 2026-11-04 is a Wednesday; its ISO week starts Monday 2026-11-02.
    slot = datetime(2026, 11, 4, 13, 0, tzinfo=UTC)
    assert Window(period=Period.WEEK, offset=-1).bounds(slot) == (
        datetime(2026, 10, 26, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    monday = datetime(2026, 11, 2, tzinfo=UTC)
    assert Window(period=Period.WEEK, offset=-1).bounds(monday)[1] == monday
    # Across a year boundary: 2027-01-01 is a Friday in ISO week 2026-W53.
    new_year = datetime(2027, 1, 1, 6, 0, tzinfo=UTC)
    assert Window(period=Period.WEEK, offset=0).bounds(new_year) == (
        datetime(2026, 12, 28, tzinfo=UTC),
        datetime(2027, 1, 4, tzinfo=UTC),
    )
    assert new_year.isocalendar()[:2] == (2026, 53)


def test_retention_defaults_and_manifest_setting(tmp_path: Path) -> None:
    assert load(write(tmp_path, BASE)).retention == Retention(runs_days=30, dead_letters_days=90)
    text = BASE.replace("jobs:\n", "retention: {runs_days: 7}\njobs:\n", 1)
    assert load(write(tmp_path, text)).retention == Retention(runs_days=7, dead_letters_days=90)
