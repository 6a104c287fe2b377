"""For random manifests (1-40 jobs, random crons over the whole dialect, some zoned) and
random trigger budgets, the real generated Worker, bundled by wrangler and run in Node,
sends at every minute of a span around DST transitions and month ends exactly the jobs
whose own schedule matches (Python's evaluator is the oracle), each once, even when
several triggers fire in the same minute."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.codegen import generate
from engine.core.errors import CronError
from engine.manifest.loader import load
from engine.schedule import cron
from engine.schedule.slots import cron_schedule
from tests.fixtures.worker_node import bundle, drive
from tests.fixtures.wrangler import Wrangler

pytestmark = pytest.mark.wrangler

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
    job: dict[str, Any] = {"cron": text, "sql": "sql/job.sql", "window": {"period": "hour"}}
    if both:
        job["allow_both_day_fields"] = True
    if draw(st.booleans()):
        job["timezone"] = draw(st.sampled_from(ZONES))
        job["dst"] = {
            "gap": draw(st.sampled_from(["shift", "skip"])),
            "overlap": draw(st.sampled_from(["first", "both"])),
        }
    return job


def manifest_data(jobs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    return {
        "version": 1,
        "plan": "paid",
        "trigger_budget": budget,
        "fold_max_wasted_per_day": 10**9,
        "worker": {"name": "fold-prop", "compatibility_date": "2026-04-01", "cron_flag": "RUN"},
        "queue": {"name": "fold-prop-jobs", "binding": "JOBS", "dead_letter_queue": "fold-dlq"},
        "jobs": {f"job-{i}": {"type": f"prop.job-{i}", **j} for i, j in enumerate(jobs)},
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fold-prop")


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    jobs=st.lists(a_job(), min_size=1, max_size=40),
    budget=st.integers(min_value=1, max_value=45),
    anchor=st.sampled_from(ANCHORS),
    lead=st.integers(min_value=0, max_value=20 * 60),
    late_ms=st.integers(min_value=0, max_value=59_999),
)
def test_the_bundled_worker_sends_exactly_the_due_jobs_each_once_every_minute(
    wrangler: Wrangler,
    workdir: Path,
    jobs: list[dict[str, Any]],
    budget: int,
    anchor: datetime,
    lead: int,
    late_ms: int,
) -> None:
    root = Path(tempfile.mkdtemp(dir=workdir))
    (root / "sql").mkdir()
    (root / "sql" / "job.sql").write_text("SELECT {{ window_start }};\n")
    (root / "jobs.yaml").write_text(yaml.safe_dump(manifest_data(jobs, budget)))
    m = load(root / "jobs.yaml")
    files = generate.render(m)
    generate.write(files, root / "generated")
    table = json.loads(files[generate.DISPATCH])
    assert len(table["triggers"]) <= budget
    module = bundle(wrangler, root / "generated" / generate.WRANGLER, root / "out")

    start = anchor - timedelta(minutes=lead)
    minutes = [start + timedelta(minutes=i) for i in range(int(SPAN.total_seconds() // 60))]
    schedules = {j.type: cron_schedule(j) for j in m.jobs}
    due = {t: sorted(ty for ty, s in schedules.items() if s.matches(t)) for t in minutes}
    # What Cloudflare does: fire each trigger at each of its minutes, a little late.
    calls = [
        (trigger, int(t.timestamp() * 1000) + late_ms)
        for t in minutes
        for trigger in table["triggers"]
        if cron.parse_cloudflare(trigger).matches(t)
    ]
    results = drive(module, queue="JOBS", calls=calls)["calls"]
    sent: dict[datetime, Counter[str]] = {t: Counter() for t in minutes}
    for (_, ms), result in zip(calls, results, strict=True):
        assert result["error"] is None, result
        t = datetime.fromtimestamp(ms // 60000 * 60, tz=UTC)
        for body in result["sent"]:
            assert body["scheduledFor"] == t.strftime("%Y-%m-%dT%H:%M:00Z")
            sent[t][body["type"]] += 1
    wrong = {
        t.isoformat(): (dict(sent[t]), due[t])
        for t in minutes
        if sorted(sent[t].elements()) != due[t]
    }
    assert wrong == {}
