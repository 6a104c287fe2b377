"""Under `wrangler dev`, triggering each cron makes the generated Worker send exactly the
messages the dispatch table names, each once, for the slot floored to the minute.

The project mirrors jobs.yaml with a Worker consumer (a test-only module that records
every body it receives) so that one local Worker both sends and receives, plus a job
whose differently spelt cron shares a trigger, and a paused job sharing another.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.codegen import generate
from engine.core.model import Environment, Manifest
from engine.manifest.loader import load
from engine.schedule import cron
from tests.fixtures.wrangler import REPO, DevServer, Wrangler, warnings_in

pytestmark = pytest.mark.wrangler

CONSUMER = Path(__file__).parent / "wrangler" / "recording_consumer.js"
SHARED_TYPE = "analytics.test-shared-trigger"
PAUSED_TYPE = "analytics.test-paused"
BATCH_TIMEOUT = 1  # seconds: the local queue delivers within about this
QUIET = BATCH_TIMEOUT + 1.5  # long enough for a stray or duplicate message to arrive
DELIVERY_TIMEOUT = 20.0
BASE = datetime(2026, 3, 1, tzinfo=UTC)
LATE = timedelta(seconds=17, milliseconds=345)  # an invocation that starts after its slot
UNKNOWN_CRON = "1 2 3 4 5"
# wrangler dev's one expected warning: crons only run when triggered by hand.
SCHEDULED_NOTICE = "Scheduled Workers are not automatically triggered during local development"


@dataclass(frozen=True)
class Project:
    config: Path
    manifest: Manifest
    triggers: dict[str, list[str]]


def mirror_of_jobs_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "jobs.yaml").read_text(encoding="utf-8"))
    consumer = data["queue"].setdefault("consumer", {})
    consumer.pop("visibility_timeout_seconds", None)  # an http_pull setting
    consumer.update(type="worker", script=CONSUMER.name, max_batch_timeout_seconds=BATCH_TIMEOUT)
    jobs = data["jobs"]
    # "0 4 1-31 * *" means "0 4 * * *": it must land on score-distribution's trigger.
    jobs["test-shared-trigger"] = {
        **jobs["score-distribution"],
        "type": SHARED_TYPE,
        "cron": "0 4 1-31 * *",
    }
    jobs["test-paused"] = {**jobs["generate-daily-reports"], "type": PAUSED_TYPE, "paused": True}
    return data


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("dev-project")
    shutil.copytree(REPO / "sql", root / "sql")
    shutil.copy(CONSUMER, root / CONSUMER.name)
    (root / "jobs.yaml").write_text(yaml.safe_dump(mirror_of_jobs_yaml(), sort_keys=False))
    manifest = load(root / "jobs.yaml")
    files = generate.render(manifest)
    generate.write(files, root / "generated")
    triggers = json.loads(files[generate.DISPATCH])["triggers"]
    return Project(root / "generated" / generate.WRANGLER, manifest, triggers)


@pytest.fixture(scope="module")
def dev(wrangler: Wrangler, project: Project) -> Iterator[DevServer]:
    with wrangler.dev(project.config) as server:
        yield server


def slot_for(trigger: str, index: int) -> datetime:
    """A slot of ``trigger``, in a window of its own so that every invocation's
    scheduledFor tells which one it came from."""
    slot = cron.parse(trigger).next_after(BASE + timedelta(days=40 * index))
    assert slot is not None, trigger
    return slot


def fire(server: DevServer, trigger: str, at: datetime) -> tuple[int, str]:
    millis = int(at.timestamp() * 1000)  # miniflare reads ?time= as epoch milliseconds
    query = urllib.parse.urlencode({"cron": trigger, "time": millis})
    return server.get(f"/cdn-cgi/handler/scheduled?{query}")


def received(server: DevServer) -> list[dict[str, Any]]:
    bodies = server.get_json("/")
    assert isinstance(bodies, list), bodies
    return sorted(bodies, key=lambda b: json.dumps(b, sort_keys=True))


def wait_for(server: DevServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while len(bodies := received(server)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return bodies


def wait_for_log(server: DevServer, text: str) -> str:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while text not in (output := server.output()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return output


def test_deploy_dry_run_accepts_the_worker_consumer_config_in_every_environment(
    wrangler: Wrangler, project: Project, tmp_path: Path
) -> None:
    targets: list[Environment | None] = [None, *project.manifest.environments]
    problems = []
    for env in targets:
        name = env.name if env else ""
        result = wrangler.deploy_dry_run(project.config, name, tmp_path / (name or "top-level"))
        if result.returncode != 0 or warnings_in(result.output):
            problems.append(str(result))
    assert not problems, "\n\n".join(problems)


def test_each_trigger_sends_exactly_its_dispatch_table_types_once_for_its_slot(
    dev: DevServer, project: Project
) -> None:
    # The project is what this test needs: a shared trigger, and a paused job whose
    # trigger still fires for another job.
    score = project.manifest.job_by_name("score-distribution")
    paused = project.manifest.job_by_name("test-paused")
    assert score is not None and paused is not None
    assert set(project.triggers[generate.trigger_of(score)]) == {score.type, SHARED_TYPE}
    assert project.triggers[generate.trigger_of(paused)], project.triggers
    assert all(PAUSED_TYPE not in types for types in project.triggers.values())
    dev.get("/reset")
    expected = []
    for index, trigger in enumerate(project.triggers):
        slot = slot_for(trigger, index)
        assert fire(dev, trigger, slot + LATE) == (200, "ok"), dev.output()
        scheduled_for = slot.strftime("%Y-%m-%dT%H:%M:00Z")
        expected += [{"type": t, "scheduledFor": scheduled_for} for t in project.triggers[trigger]]
    expected.sort(key=lambda b: json.dumps(b, sort_keys=True))

    assert wait_for(dev, len(expected)) == expected, dev.output()
    time.sleep(QUIET)  # no duplicate and no paused job's message may follow
    assert received(dev) == expected, dev.output()
    unexpected = [w for w in warnings_in(dev.output()) if SCHEDULED_NOTICE not in w]
    assert not unexpected, dev.output()


def test_a_cron_missing_from_the_dispatch_table_fails_the_run_and_sends_nothing(
    dev: DevServer, project: Project
) -> None:
    dev.get("/reset")
    assert fire(dev, UNKNOWN_CRON, BASE) == (500, "exception")
    known = ", ".join(json.dumps(t) for t in project.triggers)
    error = (
        f'cronwright: no jobs for cron trigger "{UNKNOWN_CRON}"; known triggers: {known}; '
        "run cronwright generate and redeploy"
    )
    assert error in wait_for_log(dev, error)
    time.sleep(QUIET)
    assert received(dev) == []


def test_cron_flag_false_makes_every_trigger_send_nothing(
    wrangler: Wrangler, project: Project
) -> None:
    flag = project.manifest.worker.cron_flag
    with wrangler.dev(project.config, variables={flag: "false"}) as server:
        for index, trigger in enumerate(project.triggers):
            assert fire(server, trigger, slot_for(trigger, index)) == (200, "ok"), server.output()
        # The skip lines prove each run happened and chose not to send.
        last = f'cronwright: {flag} is not "true"; skipping {list(project.triggers)[-1]}'
        output = wait_for_log(server, last)
        for trigger in project.triggers:
            assert f'cronwright: {flag} is not "true"; skipping {trigger}\n' in output, output
        time.sleep(QUIET)
        assert received(server) == []
