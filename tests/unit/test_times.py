"""The one ISO 8601 format of slots, which every message body and CLI line uses."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from engine.core.times import iso


def test_a_slot_is_written_in_utc_with_a_z_and_no_fraction() -> None:
    assert iso(datetime(2026, 10, 31, 10, 0, tzinfo=UTC)) == "2026-10-31T10:00:00Z"


def test_a_time_in_another_zone_is_written_as_its_utc_instant() -> None:
    t = datetime(2026, 1, 1, 1, 30, 15, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert iso(t) == "2025-12-31T23:30:15Z"


@given(st.datetimes(min_value=datetime(1000, 1, 2), timezones=st.just(UTC)))
def test_iso_agrees_with_strftime_and_reads_back_to_the_same_second(t: datetime) -> None:
    text = iso(t)
    assert text == t.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert datetime.fromisoformat(text) == t.replace(microsecond=0)
