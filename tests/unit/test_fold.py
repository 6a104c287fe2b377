"""Folding many schedules onto few triggers: every job on exactly one trigger, every fire
time of every job covered by its trigger, and the waste figures equal a count made by
walking the triggers minute by minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.core.model import Dst, Gap, Job, Period, Window
from engine.schedule import cron, fold
from engine.schedule.slots import cron_schedule

JOBS = [
    ("0 * * * *", None),
    ("30 2 * * *", None),
    ("15 9 * * MON-FRI", None),
    ("0 12 L * *", None),
    ("59 23 LW * *", None),
    ("0 10 * * MON#2", None),
    ("0 18 * * FRIL", None),
    ("0 12 15W * *", None),
    ("0 6 1,15 * MON", None),  # both day fields: Cloudflare's OR rule
    ("30 2 * * *", "America/New_York"),
    ("30 1 * * *", "Europe/Berlin"),
    ("0 9 * * MON-FRI", "Australia/Sydney"),
    ("45 5 * * *", "Asia/Kolkata"),
]


def jobs() -> list[Job]:
    return [
        Job(
            name=f"j{i}",
            type=f"t.j{i}",
            cron=expr,
            window=Window(period=Period.DAY),
            timezone=zone,
            allow_both_day_fields=True,
            dst=Dst(gap=Gap.SHIFT),
        )
        for i, (expr, zone) in enumerate(JOBS)
    ]


def fire_times(job: Job, start: datetime, end: datetime) -> list[datetime]:
    schedule, out = cron_schedule(job), []
    t = schedule.next_after(start)
    while t is not None and t < end:
        out.append(t)
        t = schedule.next_after(t)
    return out


@pytest.mark.parametrize("budget", [1, 2, 3, 5, 8, 13])
def test_every_fire_time_of_every_job_is_covered_by_its_one_trigger(budget: int) -> None:
    js = jobs()
    result = fold.fold(js, budget)
    assert len(result.triggers) <= budget
    assigned = [t for trig in result.triggers for t in trig.types]
    assert sorted(assigned) == sorted(j.type for j in js)  # each job exactly once
    trigger_of = result.trigger_of()
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    for job in js:
        trigger = cron.parse_cloudflare(trigger_of[job.type])
        missed = [t for t in fire_times(job, start, end) if not trigger.matches(t)]
        assert missed == [], (job.cron, job.timezone, trigger.canonical)


def test_the_trigger_of_each_type_is_one_shared_mapping_nobody_can_change() -> None:
    result = fold.fold(jobs(), 3)
    trigger_of = result.trigger_of()
    assert trigger_of is result.trigger_of()  # built once, for every job that asks
    assert dict(trigger_of) == {t: trig.cron for trig in result.triggers for t in trig.types}
    with pytest.raises(TypeError):
        trigger_of[jobs()[0].type] = "* * * * *"  # type: ignore[index]


def test_a_budget_that_fits_every_schedule_folds_nothing() -> None:
    js = [j for j in jobs() if j.timezone is None]
    result = fold.fold(js, 250)
    assert not result.folded
    assert {t.cron for t in result.triggers} == {
        cron.parse(j.cron, allow_both_day_fields=True).canonical for j in js
    }


def test_equal_schedules_spelt_differently_share_one_trigger() -> None:
    a = Job(name="a", type="t.a", cron="0 4 1-31 * *", window=Window(period=Period.DAY))
    b = Job(name="b", type="t.b", cron="0 4 * * *", window=Window(period=Period.DAY))
    assert fold.fold([a, b], 1).triggers[0].types == ("t.a", "t.b")


def test_a_zoned_job_needs_both_offsets_and_the_instant_after_the_gap() -> None:
    job = Job(
        name="n",
        type="t.n",
        cron="30 2 * * *",
        window=Window(period=Period.DAY),
        timezone="America/New_York",
    )
    # 02:30 EST is 07:30Z, 02:30 EDT 06:30Z, and the lost 02:30 runs at 03:00 EDT, 07:00Z.
    assert fold.need_of(job).text == "*/30 6-7 * * *"


def test_wasted_invocations_equal_a_minute_by_minute_count_over_the_reference_year() -> None:
    js = [j for j in jobs() if j.timezone is None]
    result = fold.fold(js, 3)
    figures = fold.stats(result, js)
    start = datetime(fold.REFERENCE_YEAR, 1, 1, tzinfo=UTC) - timedelta(minutes=1)
    end = datetime(fold.REFERENCE_YEAR + 1, 1, 1, tzinfo=UTC)
    by_type = {j.type: cron_schedule(j) for j in js}
    for trig in result.triggers:
        c = cron.parse_cloudflare(trig.cron)
        runs = wasted = 0
        for t in c.iter_after(start):
            if t >= end:
                break
            runs += 1
            wasted += not any(by_type[ty].matches(t) for ty in trig.types)
        assert figures[trig.cron] == pytest.approx((runs / 365, wasted / 365))


UNFOLDABLE = """\
version: 1
plan: free
trigger_budget: 1
fold_max_wasted_per_day: 1
worker: {name: fold-worker, compatibility_date: "2026-04-01", cron_flag: RUN_CRON}
queue: {name: fold-jobs, binding: JOBS, dead_letter_queue: fold-jobs-dlq}
jobs:
  morning:
    type: fold.morning
    cron: "0 9 * * *"
    sql: sql/a.sql
    window: {period: day, offset: -1}
  evening:
    type: fold.evening
    cron: "30 17 * * *"
    sql: sql/a.sql
    window: {period: day, offset: -1}
"""


def test_an_unfoldable_manifest_fails_generation_with_the_advice_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "a.sql").write_text("SELECT {{ slot }};\n")
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(UNFOLDABLE)
    out = tmp_path / "generated"
    out.mkdir()
    (out / "keep.txt").write_text("untouched")
    assert main(["-m", str(manifest), "generate"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"{manifest}:8:3: jobs: 2 distinct schedules exceed the budget of 1 triggers, and the "
        "best folding wastes 2.0 invocations a day (limit 1): fold.evening, fold.morning on "
        "'*/30 9,17 * * *'; give those jobs one schedule, raise trigger_budget to 2, or raise "
        "fold_max_wasted_per_day\n1 problem found\n"
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "untouched"


def test_schedule_shows_the_fold_with_invocations_and_waste_per_day_and_each_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "a.sql").write_text("SELECT {{ slot }};\n")
    text = UNFOLDABLE.replace("fold_max_wasted_per_day: 1", "fold_max_wasted_per_day: 2")
    text = text.replace('    cron: "30 17 * * *"\n', '    cron: "30 17 * * *"\n    timezone: UTC\n')
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(text)
    assert main(["-m", str(manifest), "schedule", "--next", "1", "--at", "2026-11-30T00:00Z"]) == 0
    # 09:00, 09:30, 17:00 and 17:30 fire; only 09:00 and 17:30 send anything.
    header, jobs = capsys.readouterr().out.split("\n\n", 1)
    assert header.startswith("project ")
    assert jobs == (
        "evening  [fold.evening]\n"
        "  cron     30 17 * * *\n"
        "  zone     UTC\n"
        "  trigger  */30 9,17 * * *\n"
        "  next     2026-11-30T17:30Z Mon\n"
        "morning  [fold.morning]\n"
        "  cron     0 9 * * *\n"
        "  zone     UTC\n"
        "  trigger  */30 9,17 * * *\n"
        "  next     2026-11-30T09:00Z Mon\n"
        "\n"
        "triggers: 1 of a budget of 1 (folded; invocations per day averaged over 2027)\n"
        "*/30 9,17 * * *  4.00/day  wasted 2.00/day  fold.evening, fold.morning\n"
    )
