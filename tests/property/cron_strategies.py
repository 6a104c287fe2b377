"""Hypothesis strategies shared by the folding property tests: crons over the whole
dialect (lists, ranges, steps, L, LW, W, L-n, #, xL, both day fields), jobs that are
sometimes zoned, and span anchors at DST transitions and month ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from engine.core.errors import CronError
from engine.schedule import cron

MINUTES = ["0", "30", "*/15", "5,35", "10-12", "0-40/20", "*/7", "59"]
HOURS = ["*", "2", "1-3", "*/6", "9,17", "0", "22-23", "2-4/2"]
MONTHS = ["*", "*", "*", "1-6", "*/2", "3,10", "11", "2-4"]
DOMS = ["L", "LW", "15W", "1W", "L-3", "1,15", "10-20", "*/5", "31", "28-31"]
DOWS = ["MON-FRI", "FRIL", "SUNL", "MON#2", "SUN#1", "SUN", "TUE,THU", "SAT-SUN"]
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]
# Spans start near these: DST transitions of the three zones and month ends.
ANCHORS = [
    datetime(2026, 3, 8, 6, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 16, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 5, tzinfo=UTC),
    datetime(2026, 2, 28, 12, tzinfo=UTC),
    datetime(2026, 4, 30, 12, tzinfo=UTC),
    datetime(2026, 12, 31, 12, tzinfo=UTC),
]
SPAN = timedelta(hours=30)


@st.composite
def a_cron(draw: st.DrawFn) -> tuple[str, bool]:
    days = draw(st.sampled_from(["any", "dom", "dow", "both"]))
    dom = draw(st.sampled_from(DOMS)) if days in ("dom", "both") else "*"
    dow = draw(st.sampled_from(DOWS)) if days in ("dow", "both") else "*"
    fields = [draw(st.sampled_from(MINUTES)), draw(st.sampled_from(HOURS)), dom]
    text = " ".join([*fields, draw(st.sampled_from(MONTHS)), dow])
    try:
        cron.parse(text, allow_both_day_fields=True)
    except CronError:
        assume(False)
    return text, days == "both"


@st.composite
def a_job(draw: st.DrawFn) -> dict[str, Any]:
    text, both = draw(a_cron())
    job: dict[str, Any] = {
        "cron": text,
        "sql": "sql/job.sql",
        "window": {"period": "hour", "offset": -1},
    }
    if both:
        job["allow_both_day_fields"] = True
    if draw(st.booleans()):
        job["timezone"] = draw(st.sampled_from(ZONES))
        job["dst"] = {
            "gap": draw(st.sampled_from(["shift", "skip"])),
            "overlap": draw(st.sampled_from(["first", "both"])),
        }
    return job
