"""Zoned jobs fire at their declared local minutes across DST transitions, by the gap and
overlap rules, checked against an independent oracle that searches every UTC minute for
the instants that show the wanted wall time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.core.model import Dst, Gap, Job, Period, Repeat, Window
from engine.schedule import cron
from engine.schedule.slots import cron_schedule
from engine.schedule.zones import ZonedSchedule

MINUTE = timedelta(minutes=1)
ZONES = ("America/New_York", "Europe/Berlin", "Australia/Sydney")
# (cron, hour, minute, weekdays by date.weekday(): 0 = MON)
CRONS = [
    ("30 2 * * *", 2, 30, range(7)),
    ("30 1 * * *", 1, 30, range(7)),
    ("0 9 * * MON-FRI", 9, 0, range(5)),
]
# Local dates around each zone's two 2026 transitions.
TRANSITIONS = {
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1)),
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
    "Australia/Sydney": (date(2026, 4, 5), date(2026, 10, 4)),
}


def oracle(
    zone: str, hour: int, minute: int, weekdays: range, dst: Dst, around: date
) -> list[datetime]:
    """The intended instants, local day by local day, from a search over UTC minutes."""
    z = ZoneInfo(zone)
    out: list[datetime] = []
    for k in range(-4, 5):
        d = around + timedelta(days=k)
        if d.weekday() not in weekdays:
            continue
        want = (d.year, d.month, d.day, hour, minute)
        naive = datetime(*want, tzinfo=UTC)
        window = [naive - timedelta(hours=16) + i * MINUTE for i in range(32 * 60)]
        walls = [u.astimezone(z) for u in window]
        hits = [
            u
            for u, w in zip(window, walls, strict=True)
            if (w.year, w.month, w.day, w.hour, w.minute) == want
        ]
        if len(hits) == 2:
            out += hits if dst.overlap is Repeat.BOTH else hits[:1]
        elif hits:
            out += hits
        elif dst.gap is Gap.SHIFT:  # the first instant whose wall time is past the wanted one
            out.append(
                next(
                    u
                    for u, w in zip(window, walls, strict=True)
                    if w.replace(tzinfo=None) > naive.replace(tzinfo=None)
                )
            )
    return out


RULES = [Dst(gap=g, overlap=o) for g in Gap for o in Repeat]


@pytest.mark.parametrize("rules", RULES, ids=lambda d: f"{d.gap}-{d.overlap}")
@pytest.mark.parametrize("expr,hour,minute,weekdays", CRONS, ids=[c[0] for c in CRONS])
@pytest.mark.parametrize("zone", ZONES)
def test_zoned_job_fires_at_the_declared_local_minutes_across_both_transitions(
    zone: str, expr: str, hour: int, minute: int, weekdays: range, rules: Dst
) -> None:
    schedule = ZonedSchedule(cron.parse(expr), zone, rules)
    for around in TRANSITIONS[zone]:
        start = datetime(around.year, around.month, around.day, tzinfo=UTC) - timedelta(
            days=2, hours=14
        )
        end = start + timedelta(days=5)
        expected = [
            t for t in oracle(zone, hour, minute, weekdays, rules, around) if start < t < end
        ]
        walked = []
        t = schedule.next_after(start)
        while t is not None and t < end:
            walked.append(t)
            t = schedule.next_after(t)
        matched = [
            start + i * MINUTE for i in range(1, 5 * 1440) if schedule.matches(start + i * MINUTE)
        ]
        assert walked == expected
        assert matched == expected


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fires(expr: str, zone: str, dst: Dst, start: str, end: str) -> list[str]:
    schedule = ZonedSchedule(cron.parse(expr), zone, dst)
    out, t = [], schedule.next_after(z(start))
    while t is not None and t < z(end):
        out.append(t.strftime("%Y-%m-%dT%H:%MZ"))
        t = schedule.next_after(t)
    return out


def test_a_time_lost_to_spring_forward_runs_once_at_the_first_minute_after_the_gap() -> None:
    # New York skips 02:00-02:59 on 8 March 2026; 03:00 EDT is 07:00Z.
    assert fires(
        "30 2 * * *", "America/New_York", Dst(), "2026-03-07T00:00Z", "2026-03-10T00:00Z"
    ) == ["2026-03-07T07:30Z", "2026-03-08T07:00Z", "2026-03-09T06:30Z"]
    every_ten = fires(
        "*/10 2 * * *", "America/New_York", Dst(), "2026-03-08T05:00Z", "2026-03-08T09:00Z"
    )
    assert every_ten == ["2026-03-08T07:00Z"]


def test_skip_drops_a_time_lost_to_spring_forward() -> None:
    assert fires(
        "30 2 * * *", "Europe/Berlin", Dst(gap=Gap.SKIP), "2026-03-28T00:00Z", "2026-03-31T00:00Z"
    ) == ["2026-03-28T01:30Z", "2026-03-30T00:30Z"]


def test_a_repeated_time_runs_at_its_first_occurrence_or_at_both() -> None:
    # Sydney repeats 02:00-02:59 on 5 April 2026 (AEDT +11, then AEST +10).
    first = fires("30 2 * * *", "Australia/Sydney", Dst(), "2026-04-04T00:00Z", "2026-04-05T12:00Z")
    assert first == ["2026-04-04T15:30Z"]
    both = fires(
        "30 2 * * *",
        "Australia/Sydney",
        Dst(overlap=Repeat.BOTH),
        "2026-04-04T00:00Z",
        "2026-04-05T12:00Z",
    )
    assert both == ["2026-04-04T15:30Z", "2026-04-04T16:30Z"]


def test_the_runtime_schedule_of_a_zoned_job_is_zoned() -> None:
    job = Job(
        name="nine",
        type="t.nine",
        cron="0 9 * * MON-FRI",
        window=Window(period=Period.DAY),
        timezone="America/New_York",
    )
    schedule = cron_schedule(job)
    assert schedule.matches(z("2026-03-06T14:00Z"))  # Friday 09:00 EST
    assert schedule.next_after(z("2026-03-06T14:00Z")) == z("2026-03-09T13:00Z")  # Monday EDT


def test_a_zoned_window_is_the_previous_local_day_as_two_utc_instants() -> None:
    window = Window(period=Period.DAY, offset=-1, timezone="America/New_York")
    # 9 March 09:00 EDT: the previous local day, 8 March, lasted 23 hours.
    assert window.bounds(z("2026-03-09T13:00Z")) == (z("2026-03-08T05:00Z"), z("2026-03-09T04:00Z"))
    month = Window(period=Period.MONTH, offset=-1, timezone="Australia/Sydney")
    assert month.bounds(z("2026-04-30T23:00Z")) == (z("2026-03-31T13:00Z"), z("2026-04-30T14:00Z"))
    hour = Window(period=Period.HOUR, offset=-1, timezone="Asia/Kolkata")
    assert hour.bounds(z("2026-04-30T23:40Z")) == (z("2026-04-30T22:30Z"), z("2026-04-30T23:30Z"))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expr", ["*/7 * * * *", "30 2 * * *", "0 9 * * MON-FRI", "0 0 1 * *"])
@pytest.mark.parametrize("rules", RULES, ids=lambda d: f"{d.gap}-{d.overlap}")
def test_the_shortcut_through_a_calm_span_lands_where_the_walk_by_the_dst_rules_does(
    zone: str, expr: str, rules: Dst
) -> None:
    schedule = ZonedSchedule(cron.parse(expr), zone, rules)
    # Every day of 2026 at three times of day, and the minutes around each change of
    # offset (where the shortcut must step aside): both answers agree.
    starts = [
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=d, hours=h, minutes=17)
        for d in range(365)
        for h in (0, 9, 23)
    ]
    for around in TRANSITIONS[zone]:
        at = datetime(around.year, around.month, around.day, tzinfo=UTC)
        starts += [at - timedelta(days=3) + i * timedelta(minutes=29) for i in range(6 * 50)]
    walk = schedule._next_after
    walked: list[datetime] = []

    def counted(t: datetime) -> datetime | None:
        walked.append(t)
        return walk(t)

    schedule._next_after = counted  # type: ignore[method-assign]
    for t in starts:
        assert schedule.next_after(t) == walk(t), t
    assert len(walked) < len(starts) / 2  # the shortcut answered most


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"])
def test_a_zoned_schedule_fires_no_more_past_the_calendars_end_as_a_utc_one_does(
    zone: str,
) -> None:
    for rules in RULES:
        schedule = ZonedSchedule(cron.parse("59 23 31 12 *"), zone, rules)
        # Its last slot, if 9999-12-31 23:59 local is still in datetime's range in UTC
        # (east of UTC), then nothing.
        t = schedule.next_after(datetime(9999, 12, 30, tzinfo=UTC))
        if t is not None:
            assert t.year == 9999 and schedule.next_after(t) is None
    assert (
        cron.parse("59 23 31 12 *").next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    )
