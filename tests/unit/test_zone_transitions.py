"""A zone's offset changes are found by sampling once a day and bisecting to the minute
(engine/schedule/zones.py). A day is a safe step only while no zone changes its offset
twice within one: checked here for every zone of the tz database over the generator's
horizon, against a sample every 6 hours (a quarter of the step), and the bisection
against the minute itself on the zones the example and its tests use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.schedule import zones


def test_sampling_once_a_day_finds_every_change_that_sampling_every_6_hours_finds() -> None:
    six_hours = timedelta(hours=6)
    differ = [
        name
        for name in zones._names()
        if zones.transitions(name, *zones.HORIZON)
        != zones._transitions(name, *zones.HORIZON, six_hours)
    ]
    assert differ == []


@pytest.mark.parametrize("name", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
def test_each_change_is_the_first_minute_at_the_new_offset(name: str) -> None:
    z = zones.zone(name)
    found = zones.transitions(name, 2026, 2027)
    assert len(found) == 4
    for tr in found:
        assert zones.offset_minutes(tr.at - timedelta(minutes=1), z) == tr.before
        assert zones.offset_minutes(tr.at, z) == tr.after
        assert tr.at.tzinfo is UTC and tr.at.second == 0
    assert all(
        datetime(2026, 1, 1, tzinfo=UTC) <= tr.at < datetime(2028, 1, 1, tzinfo=UTC) for tr in found
    )


def test_a_zone_without_daylight_saving_has_no_change() -> None:
    assert zones.transitions("Asia/Kolkata", *zones.HORIZON) == ()
