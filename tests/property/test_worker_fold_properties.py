"""For random manifests (1-40 jobs, random crons over the whole dialect, some zoned) and
random trigger budgets, the real generated Worker, bundled by wrangler and run in Node,
sends at every minute of a span around DST transitions and month ends exactly the jobs
whose own schedule matches (Python's evaluator is the oracle), each once, even when
several triggers fire in the same minute; its matcher data lists each distinct schedule of
a trigger once; and every sendBatch and data point stays within Cloudflare's limits."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.codegen import generate
from engine.manifest.loader import load
from engine.schedule import cron
from engine.schedule.slots import cron_schedule
from tests.fixtures.worker_node import bundle, drive
from tests.fixtures.wrangler import Wrangler
from tests.property.cron_strategies import ANCHORS, SPAN, a_job

pytestmark = pytest.mark.wrangler


def manifest_data(jobs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    return {
        "version": 1,
        "plan": "paid",
        "trigger_budget": budget,
        "fold_max_wasted_per_day": 10**9,
        "worker": {"name": "fold-prop", "compatibility_date": "2026-04-01", "cron_flag": "RUN"},
        "queue": {"name": "fold-prop-jobs", "binding": "JOBS", "dead_letter_queue": "fold-dlq"},
        "analytics_engine": {"binding": "LOGS", "dataset": "fold_logs"},
        "jobs": {f"job-{i}": {"type": f"prop.job-{i}", **j} for i, j in enumerate(jobs)},
    }


def assert_within_limits(result: dict[str, Any]) -> None:
    """Cloudflare's: sendBatch <= 100 messages and 256 KB with ~100 bytes of metadata each
    (1 KB = 1000 bytes); a data point's index <= 96 bytes, blobs <= 16 KB, <= 20 of each."""
    for batch in result["batches"]:
        assert 0 < batch["messages"] <= 100
        assert batch["bytes"] + 100 * batch["messages"] <= 256_000
    (point,) = result["points"]
    assert [len(i.encode()) <= 96 for i in point["indexes"]] == [True]
    assert len(point["blobs"]) <= 20 and sum(len(b.encode()) for b in point["blobs"]) <= 16_000
    assert len(point["doubles"]) <= 20 and point["doubles"][0] == len(result["sent"])


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
    for trigger, schedules in table["matcher"]["triggers"].items():
        shapes = [json.dumps({**s, "types": []}, sort_keys=True) for s in schedules]
        assert len(set(shapes)) == len(shapes), trigger  # each distinct schedule once
        assert sorted(t for s in schedules for t in s["types"]) == table["triggers"][trigger]
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
    results = drive(module, queue="JOBS", dataset="LOGS", calls=calls)["calls"]
    sent: dict[datetime, Counter[str]] = {t: Counter() for t in minutes}
    for (_, ms), result in zip(calls, results, strict=True):
        assert result["error"] is None, result
        assert_within_limits(result)
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
