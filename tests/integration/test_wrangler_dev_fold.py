"""Under `wrangler dev`, a folded config (more schedules than its budget of triggers, some
of them zoned) sends, when each trigger fires at chosen times, exactly the messages of the
trigger's jobs whose own schedule matches that minute: Python's evaluator is the oracle."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.codegen import generate
from engine.core.model import Manifest
from engine.manifest.loader import load
from engine.schedule import cron
from engine.schedule.slots import cron_schedule
from tests.fixtures.wrangler import REPO, DevServer, Wrangler, warnings_in

pytestmark = pytest.mark.wrangler

CONSUMER = Path(__file__).parent / "wrangler" / "recording_consumer.js"
DELIVERY_TIMEOUT = 20.0
QUIET = 2.5
SCHEDULED_NOTICE = "Scheduled Workers are not automatically triggered during local development"
EXTRA_JOBS = {
    "ny-morning": ("0 9 * * MON-FRI", "America/New_York"),
    "berlin-night": ("30 2 * * *", "Europe/Berlin"),
    "sydney-night": ("30 1 * * *", "Australia/Sydney"),
    "month-end": ("45 23 L * *", None),
}
# Around the 2026 DST transitions of the three zones and a month end.
BASES = [
    datetime(2026, 3, 6, tzinfo=UTC),
    datetime(2026, 3, 28, tzinfo=UTC),
    datetime(2026, 4, 3, tzinfo=UTC),
    datetime(2026, 10, 31, tzinfo=UTC),
]


def folded_project_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "jobs.yaml").read_text(encoding="utf-8"))
    data.update(plan="free", trigger_budget=3, fold_max_wasted_per_day=5000)
    data.pop("environments")
    consumer = data["queue"].setdefault("consumer", {})
    consumer.pop("visibility_timeout_seconds", None)
    consumer.update(type="worker", script=CONSUMER.name, max_batch_timeout_seconds=1)
    template = data["jobs"]["generate-daily-reports"]
    for name, (expr, zone) in EXTRA_JOBS.items():
        job = {**template, "type": f"analytics.test-{name}", "cron": expr}
        if zone:
            job["timezone"] = zone
        data["jobs"][f"test-{name}"] = job
    return data


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Manifest, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("dev-fold")
    shutil.copytree(REPO / "sql", root / "sql")
    shutil.copy(CONSUMER, root / CONSUMER.name)
    (root / "jobs.yaml").write_text(yaml.safe_dump(folded_project_data(), sort_keys=False))
    manifest = load(root / "jobs.yaml")
    files = generate.render(manifest)
    generate.write(files, root / "generated")
    triggers = json.loads(files[generate.DISPATCH])["triggers"]
    return root / "generated" / generate.WRANGLER, manifest, triggers


@pytest.fixture(scope="module")
def dev(
    wrangler: Wrangler, project: tuple[Path, Manifest, dict[str, list[str]]]
) -> Iterator[DevServer]:
    with wrangler.dev(project[0]) as server:
        yield server


def fire(server: DevServer, trigger: str | None, at: datetime) -> tuple[int, str]:
    query = {"time": int(at.timestamp() * 1000)}
    if trigger is not None:
        query["cron"] = trigger  # type: ignore[assignment]
    return server.get(f"/cdn-cgi/handler/scheduled?{urllib.parse.urlencode(query)}")


def received(server: DevServer) -> list[dict[str, Any]]:
    bodies = server.get_json("/")
    assert isinstance(bodies, list), bodies
    return sorted(bodies, key=lambda b: json.dumps(b, sort_keys=True))


def test_each_trigger_of_a_folded_config_sends_exactly_its_due_jobs(
    dev: DevServer, project: tuple[Path, Manifest, dict[str, list[str]]]
) -> None:
    _, manifest, triggers = project
    assert len(triggers) <= 3 < len({generate.trigger_of(j) for j in manifest.jobs})
    schedules = {j.type: cron_schedule(j) for j in manifest.jobs}
    dev.get("/reset")
    expected: list[dict[str, Any]] = []
    fired = 0
    for trigger, types in triggers.items():
        c = cron.parse_cloudflare(trigger)
        for base in BASES:
            for t in c.fire_times(base, 4 if fired < 60 else 1):
                assert fire(dev, trigger, t + timedelta(seconds=7)) == (200, "ok"), dev.output()
                fired += 1
                slot = t.strftime("%Y-%m-%dT%H:%M:00Z")
                expected += [
                    {"type": ty, "scheduledFor": slot} for ty in types if schedules[ty].matches(t)
                ]
        # and each zoned job's own slots near the transitions, through its trigger
        for ty in types:
            for base in BASES:
                t = schedules[ty].next_after(base)
                assert t is not None and c.matches(t)
                assert fire(dev, trigger, t) == (200, "ok"), dev.output()
                slot = t.strftime("%Y-%m-%dT%H:%M:00Z")
                expected += [
                    {"type": x, "scheduledFor": slot} for x in types if schedules[x].matches(t)
                ]
    expected.sort(key=lambda b: json.dumps(b, sort_keys=True))
    assert any(len(types) > 1 for types in triggers.values())
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while len(received(dev)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(QUIET)
    assert received(dev) == expected, dev.output()
    unexpected = [w for w in warnings_in(dev.output()) if SCHEDULED_NOTICE not in w]
    assert not unexpected, dev.output()


def test_a_missing_cron_says_how_to_fire_one_once_without_a_stack_trace(dev: DevServer) -> None:
    dev.get("/reset")
    assert fire(dev, None, BASES[0]) == (200, "ok")
    line = "cronwright: this scheduled event names no cron trigger; in wrangler dev fire one"
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while line not in dev.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    output = dev.output()
    assert output.count(line) == 1, output
    assert "    at " not in output, output  # no stack trace
    assert received(dev) == []
