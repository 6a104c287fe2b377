"""The cron mapping is exact: what Cloudflare fires, what the dispatch table sends and what
the runtime runs agree at every minute, for random manifests."""

from __future__ import annotations

import contextlib
import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.codegen import generate
from engine.core.errors import ManifestErrors
from engine.manifest.loader import load_text
from engine.schedule import cron

# Expressions that mean the same schedule are spelt differently on purpose, so the
# generator must fold them into one canonical trigger.
SCHEDULES = [
    "0 * * * *",
    "0 */1 * * *",
    "0 0-23 * * *",
    "*/30 * * * *",
    "0,30 * * * *",
    "0-59/30 * * * *",
    "*/15 * * * *",
    "0,15,30,45 * * * *",
    "0 2 * * *",
    "0 02 * * *",
    "0 3 1 * *",
    "0 3 1 1-12 *",
    "10 7 * * MON-FRI",
    "10 7 * * mon-fri",
    "10 7 * * MON,TUE,WED,THU,FRI",
    "0 17 * * SUN",
    "0 17 * * sun",
    "0 18 * * FRIL",
    "59 23 LW * *",
    "0 10 * * MON#2",
    "0 9 L * *",
    "5 4 * * *",
    "*/10 9-17 * * MON-FRI",
    "0 12 15W * *",
    "0 0 * JAN-MAR *",
]

HEAD = {
    "version": 1,
    "plan": "paid",
    "worker": {
        "name": "prop-worker",
        "compatibility_date": "2026-04-01",
        "cron_flag": "ENABLE_CRON",
    },
    "queue": {"name": "prop-jobs", "binding": "JOBS", "dead_letter_queue": "prop-jobs-dlq"},
    "environments": {
        "staging": {"cron_enabled": False, "queue": "prop-jobs-staging"},
        "production": None,
    },
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("manifest")
    (d / "sql").mkdir()
    (d / "sql" / "job.sql").write_text("SELECT {{ window_start }};\n")
    return d


jobs_strategy = st.lists(
    st.tuples(st.sampled_from(SCHEDULES), st.booleans()), min_size=1, max_size=12
)


def manifest_text(jobs: list[tuple[str, bool]]) -> str:
    data = dict(HEAD)
    data["jobs"] = {
        f"job-{i}": {
            "type": f"prop.job-{i}",
            "cron": expr,
            "sql": "sql/job.sql",
            "window": {"period": "hour", "offset": -1},
            "paused": paused,
            "retry": {"max_attempts": 1 + i},
        }
        for i, (expr, paused) in enumerate(jobs)
    }
    return yaml.safe_dump(data, sort_keys=False)


minutes = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda t: t.replace(second=0, microsecond=0, tzinfo=UTC)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=jobs_strategy, t=minutes)
def test_worker_sends_exactly_the_jobs_whose_cron_matches_each_minute(
    root: Path, jobs: list[tuple[str, bool]], t: datetime
) -> None:
    m = load_text(manifest_text(jobs), root=root)
    table = json.loads(generate.render(m)[generate.DISPATCH])
    # What Cloudflare fires at t, then what the Worker looks up for each fired trigger.
    sent = [
        type_
        for trigger, types in table["triggers"].items()
        if cron.parse(trigger).matches(t)
        for type_ in types
    ]
    due = sorted(j.type for j in m.jobs if not j.paused and cron.parse(j.cron).matches(t))
    assert sorted(sent) == due
    assert len(sent) == len(set(sent))
    # What the runtime runs for each message is the job of that type, at that slot.
    for type_ in sent:
        job = m.job_by_type(type_)
        assert job is not None and cron.parse(job.cron).matches(t)


@settings(max_examples=60, deadline=None)
@given(jobs=jobs_strategy)
def test_wrangler_crons_equal_the_dispatch_tables_keys(
    root: Path, jobs: list[tuple[str, bool]]
) -> None:
    m = load_text(manifest_text(jobs), root=root)
    files = generate.render(m)
    config = tomllib.loads(files[generate.WRANGLER])
    table = json.loads(files[generate.DISPATCH])
    crons = config["env"]["production"]["triggers"]["crons"]
    assert config["env"]["staging"]["triggers"]["crons"] == crons
    assert config["triggers"]["crons"] == []  # the top level (wrangler dev) fires nothing
    assert crons == list(table["triggers"])
    assert crons == sorted(set(crons))
    # One trigger per schedule: no two triggers fire at the same minutes.
    parsed = [cron.parse(c) for c in crons]
    assert len({p.canonical for p in parsed}) == len(parsed)
    for p in parsed:
        assert cron.parse(p.canonical).canonical == p.canonical


@settings(max_examples=40, deadline=None)
@given(jobs=jobs_strategy)
def test_generation_is_deterministic_and_the_toml_round_trips(
    root: Path, jobs: list[tuple[str, bool]]
) -> None:
    text = manifest_text(jobs)
    first = generate.render(load_text(text, root=root))
    second = generate.render(load_text(text, root=root))
    assert first == second
    config = tomllib.loads(first[generate.WRANGLER])
    m = load_text(text, root=root)
    assert config["name"] == m.worker.name
    assert config["vars"]["ENABLE_CRON"] == "true"
    assert config["env"]["staging"]["vars"]["ENABLE_CRON"] == "false"
    for section in (config, config["env"]["production"]):
        assert section["queues"]["producers"] == [{"binding": "JOBS", "queue": "prop-jobs"}]
    staging = config["env"]["staging"]["queues"]["producers"]
    assert staging == [{"binding": "JOBS", "queue": "prop-jobs-staging"}]
    assert f"--message-retries {m.consumer_max_retries} " in first[generate.PREFLIGHT]


def test_slots_of_one_trigger_are_one_minute_apart_at_most_once() -> None:
    """A trigger fires at most once a minute, so one slot never sends a job twice."""
    c = cron.parse("* * * * *")
    t = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
    assert c.next_after(t) == t + timedelta(minutes=1)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_loading_arbitrary_text_raises_only_manifest_errors(root: Path, text: str) -> None:
    with contextlib.suppress(ManifestErrors):
        load_text(text, root=root)


@settings(max_examples=200, deadline=None)
@given(
    data=st.dictionaries(st.sampled_from([*HEAD, "jobs", "extra"]), yaml_values, max_size=6),
    jobs=st.dictionaries(st.text(max_size=10), yaml_values, max_size=3),
)
def test_loading_arbitrary_structures_raises_only_manifest_errors(
    root: Path, data: dict[str, object], jobs: dict[str, object]
) -> None:
    doc = {**HEAD, **data, "jobs": jobs}
    with contextlib.suppress(ManifestErrors):
        load_text(yaml.safe_dump(doc), root=root)
