"""The longest gap between two slots, computed from the parsed fields over the whole
400-year calendar cycle (the default catch-up window and the catch-up check use it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.schedule import cron
from engine.schedule.slots import longest_gap

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("expr", "both", "gap"),
    [
        ("* * * * *", False, MINUTE),
        ("*/5 * * * *", False, 5 * MINUTE),
        ("0,50 * * * *", False, 50 * MINUTE),
        ("0 * * * *", False, timedelta(hours=1)),
        ("0 9,17 * * *", False, timedelta(hours=16)),
        ("10 7 * * *", False, DAY),
        # Friday 09:00 to Monday 09:00.
        ("0 9 * * MON-FRI", False, 3 * DAY),
        ("0 0 * * SUN", False, 7 * DAY),
        # July to August and December to January.
        ("0 3 1 * *", False, 31 * DAY),
        ("0 0 L * *", False, 31 * DAY),
        # The first Monday: 28 or 35 days apart.
        ("0 0 * * MON#1", False, 35 * DAY),
        # Friday 28 November 2059 (the 30th is a Sunday) to Wednesday 31 December.
        ("0 0 LW * *", False, 33 * DAY),
        # The 31st: from 31 August to 31 October (no 31 September).
        ("0 0 31 * *", False, 61 * DAY),
        # Either field matches: the 13th or a Friday, never more than a week apart.
        ("0 0 13 * FRI", True, 7 * DAY),
        # 29 February 2096 to 29 February 2104: 2100 is not a leap year.
        ("0 0 29 2 *", False, 2921 * DAY),
        # Every minute of that day: from its last minute to the next such day's first.
        ("* * 29 2 *", False, 2920 * DAY + MINUTE),
        # From 31 January 23:55 to 1 January 00:00: a walk over the first slots misses it.
        ("*/5 * * 1 *", False, 335 * DAY + 5 * MINUTE),
    ],
)
def test_the_longest_gap_is_read_from_the_fields_over_the_whole_calendar_cycle(
    expr: str, both: bool, gap: timedelta
) -> None:
    assert longest_gap(cron.parse(expr, allow_both_day_fields=both)) == gap


def test_a_cron_that_never_fires_has_no_gap() -> None:
    assert longest_gap(cron.parse_cloudflare("0 0 30 2 *")) is None
