"""The longest gap read from a cron's fields equals the longest gap found by walking its
slots one by one (the slow way it was computed before) over 30 years, which hold every
weekday-and-month-length pattern of the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.schedule import cron
from engine.schedule.slots import longest_gap
from tests.property.cron_strategies import DOMS, DOWS, MONTHS

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2056, 1, 1, tzinfo=UTC)


def walked(c: cron.Cron) -> timedelta:
    longest = timedelta(0)
    t = c.next_after(START)
    assert t is not None
    while t < END:
        nxt = c.next_after(t)
        assert nxt is not None
        longest = max(longest, nxt - t)
        t = nxt
    return longest


@settings(max_examples=40)
@given(
    minute=st.sampled_from(["7", "0,30", "*/20"]),
    hour=st.sampled_from(["3", "0,23", "9-17/4"]),
    days=st.sampled_from(["any", "dom", "dow", "both"]),
    dom=st.sampled_from(DOMS),
    dow=st.sampled_from(DOWS),
    month=st.sampled_from(MONTHS),
)
def test_the_gap_read_from_the_fields_is_the_longest_gap_between_walked_slots(
    minute: str, hour: str, days: str, dom: str, dow: str, month: str
) -> None:
    text = " ".join(
        [
            minute,
            hour,
            dom if days in ("dom", "both") else "*",
            month,
            dow if days in ("dow", "both") else "*",
        ]
    )
    c = cron.parse_cloudflare(text)
    if c.fires:
        assert longest_gap(c) == walked(c)
