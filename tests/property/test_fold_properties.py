"""Folding, for random jobs and budgets, in Python alone (many more examples than the Node
test can afford): at most ``budget`` triggers, each job on exactly one, and every fire
time of every job in a span around DST transitions and month ends is a fire time of its
trigger, so the Worker is invoked whenever a job is due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.model import Dst, Gap, Job, Period, Repeat, Window
from engine.schedule import cron, fold
from engine.schedule.slots import cron_schedule
from tests.property.cron_strategies import ANCHORS, SPAN, a_job


def as_job(i: int, data: dict[str, Any]) -> Job:
    dst = data.get("dst", {})
    return Job(
        name=f"job-{i}",
        type=f"prop.job-{i}",
        cron=data["cron"],
        window=Window(period=Period.HOUR),
        allow_both_day_fields=data.get("allow_both_day_fields", False),
        timezone=data.get("timezone"),
        dst=Dst(gap=Gap(dst.get("gap", "shift")), overlap=Repeat(dst.get("overlap", "first"))),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(a_job(), min_size=1, max_size=40),
    budget=st.integers(min_value=1, max_value=45),
    anchor=st.sampled_from(ANCHORS),
)
def test_every_fire_time_falls_on_the_one_trigger_its_job_is_folded_onto(
    specs: list[dict[str, Any]], budget: int, anchor: datetime
) -> None:
    jobs = [as_job(i, s) for i, s in enumerate(specs)]
    result = fold.fold(jobs, budget)
    assert len(result.triggers) <= budget
    assert sorted(t for trig in result.triggers for t in trig.types) == sorted(j.type for j in jobs)
    trigger_of = result.trigger_of()
    start, end = anchor - SPAN, anchor + SPAN
    for job in jobs:
        trigger = cron.parse_cloudflare(trigger_of[job.type])
        schedule = cron_schedule(job)
        t = schedule.next_after(start - timedelta(minutes=1))
        while t is not None and t < end:
            assert trigger.matches(t), (job.cron, job.timezone, trigger.canonical, t)
            t = schedule.next_after(t)
