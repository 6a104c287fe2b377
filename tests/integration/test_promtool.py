"""The generated alert rules and dashboard, and a live /metrics, through Prometheus' own
promtool: the rules parse and each alert fires when it should and not when it should not
(`promtool test rules` on series written here), every dashboard query parses, the
exposition lints clean, and the README's scrape configuration is valid."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.app import observe
from engine.codegen import generate
from engine.manifest.loader import load
from engine.runtime.metrics import MetricRecord
from engine.runtime.outcome import Status
from tests.fixtures.aio import run
from tests.fixtures.need import missing
from tests.fixtures.ops_manifest import ops_manifest

pytestmark = pytest.mark.promtool

REPO = Path(__file__).resolve().parents[2]
HOURLY_MISSING = {
    "summary": "hourly has missing slots",
    "description": "1 due slot(s) of hourly (cron `0 * * * *` UTC) have had no run and no"
    " message for over 15m (600 s of grace for their sender, then 5m in which the reconciler"
    " did not send them). `cronwright slots hourly --from T1 --to T2` lists them;"
    " `cronwright reconcile` enqueues them.",
}
RUNNER_DOWN_TAIL = (
    " for 5m: slots are neither sent nor run there. Check the `cronwright serve` or"
    " `cronwright consume` process, its --metrics-port, and that Prometheus scrapes it as"
    " job cronwright."
)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:  # .ci/run installs it
        missing("promtool is not installed (apt-get install prometheus)")
    return path


def repo_rule_count() -> int:
    """Runner down, dead letters and notifications given up, a missing-slot rule per
    running job and a near-timeout rule per job."""
    jobs = load(REPO / "jobs.yaml").jobs
    return 3 + sum(not j.paused for j in jobs) + len(jobs)


def tool(promtool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def rules_test(promtool: str, tmp_path: Path, series: dict[str, str], *checks: Any) -> None:
    """Runs ``promtool test rules`` on the ops manifest's alerts.yml: ``series`` at a
    one-minute interval, each check ``(minute, alertname, [(labels, annotations)])``."""
    (tmp_path / "alerts.yml").write_text(
        generate.render(ops_manifest(tmp_path))[generate.ALERTS], encoding="utf-8"
    )
    spec = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": f"{minute}m",
                        "alertname": name,
                        "exp_alerts": [
                            {"exp_labels": labels, "exp_annotations": notes}
                            for labels, notes in alerts
                        ],
                    }
                    for minute, name, alerts in checks
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    done = tool(promtool, "test", "rules", str(tmp_path / "test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_committed_alert_rules_pass_promtool_check_rules(promtool: str) -> None:
    done = tool(promtool, "check", "rules", str(REPO / "generated" / generate.ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {repo_rule_count()} rules found" in done.stdout


def test_a_slot_missing_for_five_minutes_alerts_on_its_job_only(
    promtool: str, tmp_path: Path
) -> None:
    # Missing since minute 2 on one instance of hourly; nothing missing elsewhere.
    rules_test(
        promtool,
        tmp_path,
        {
            'cronwright_missing_slots{job="hourly", instance="a"}': "0 0 1x50",
            'cronwright_missing_slots{job="hourly", instance="b"}': "0x52",
            'cronwright_missing_slots{job="nightly", instance="a"}': "0x52",
        },
        (6, "CronwrightSlotMissing", []),
        (
            8,
            "CronwrightSlotMissing",
            [({"job": "hourly", "severity": "critical"}, HOURLY_MISSING)],
        ),
        (
            43,
            "CronwrightSlotMissing",
            [({"job": "hourly", "severity": "critical"}, HOURLY_MISSING)],
        ),
    )


def test_a_slot_the_reconciler_sends_within_five_minutes_never_alerts(
    promtool: str, tmp_path: Path
) -> None:
    rules_test(
        promtool,
        tmp_path,
        {'cronwright_missing_slots{job="hourly", instance="a"}': "0 1x3 0x40 1x2 0x5"},
        (4, "CronwrightSlotMissing", []),
        (20, "CronwrightSlotMissing", []),
        (46, "CronwrightSlotMissing", []),
    )


def test_a_dead_letter_alerts_for_its_window_and_a_flat_counter_never_does(
    promtool: str, tmp_path: Path
) -> None:
    alert = (
        {"job": "hourly", "severity": "warning"},
        {
            "summary": "Runs of hourly were dead-lettered",
            "description": "1 run(s) of hourly dead-lettered in the last 15m."
            " `cronwright dead-letters list` shows why; `cronwright dead-letters replay`"
            " runs them again once fixed.",
        },
    )
    rules_test(
        promtool,
        tmp_path,
        {
            # From 0 at start-up (observe.Metrics creates every job's counters at 0).
            'cronwright_runs_total{job="hourly", status="dead_lettered", instance="a"}': "0x5 1x30",
            'cronwright_runs_total{job="nightly", status="dead_lettered", instance="a"}': "3x35",
            'cronwright_runs_total{job="hourly", status="succeeded", instance="a"}': "0+1x35",
        },
        (5, "CronwrightDeadLetters", []),
        (7, "CronwrightDeadLetters", [alert]),
        (20, "CronwrightDeadLetters", [alert]),
        (25, "CronwrightDeadLetters", []),
    )


def test_a_notification_given_up_alerts_by_kind_for_its_window(
    promtool: str, tmp_path: Path
) -> None:
    alert = (
        {"kind": "dead_letter", "severity": "warning"},
        {
            "summary": "cronwright gave up sending dead_letter notifications",
            "description": "1 dead_letter notification(s) were given up in the last 15m,"
            " after every retry: their receivers were not told. The runner's log names each"
            " target and its error; fix the URL or the receiver (an alert that reaches nobody"
            " is the silent failure this one is for).",
        },
    )
    rules_test(
        promtool,
        tmp_path,
        {
            # From 0 at start-up, on two runners; retries and sends never alert.
            'cronwright_notifications_total{kind="dead_letter", outcome="given_up", instance="a"}': "0x5 1x30",
            'cronwright_notifications_total{kind="dead_letter", outcome="given_up", instance="b"}': "0x35",
            'cronwright_notifications_total{kind="missing", outcome="retry", instance="a"}': "0+1x35",
            'cronwright_notifications_total{kind="missing", outcome="sent", instance="b"}': "0+1x35",
        },
        (5, "CronwrightNotificationsGivenUp", []),
        (7, "CronwrightNotificationsGivenUp", [alert]),
        (20, "CronwrightNotificationsGivenUp", [alert]),
        (25, "CronwrightNotificationsGivenUp", []),
    )


def test_a_runner_unscraped_for_five_minutes_is_down_and_the_others_are_not(
    promtool: str, tmp_path: Path
) -> None:
    rules_test(
        promtool,
        tmp_path,
        {
            'up{job="cronwright", instance="runner-1:9100"}': "1 1 0x10",
            'up{job="cronwright", instance="runner-2:9100"}': "1x12",
        },
        (5, "CronwrightRunnerDown", []),
        (
            8,
            "CronwrightRunnerDown",
            [
                (
                    {"job": "cronwright", "instance": "runner-1:9100", "severity": "critical"},
                    {
                        "summary": "A cronwright runner is down",
                        "description": "runner-1:9100 has not been scraped" + RUNNER_DOWN_TAIL,
                    },
                )
            ],
        ),
    )


def test_no_cronwright_target_at_all_is_a_runner_down(promtool: str, tmp_path: Path) -> None:
    rules_test(
        promtool,
        tmp_path,
        {'up{job="node", instance="db:9100"}': "1x10"},
        (4, "CronwrightRunnerDown", []),
        (
            6,
            "CronwrightRunnerDown",
            [
                (
                    {"job": "cronwright", "severity": "critical"},
                    {
                        "summary": "A cronwright runner is down",
                        "description": "No cronwright target has been scraped" + RUNNER_DOWN_TAIL,
                    },
                )
            ],
        ),
    )


def test_a_run_over_80_percent_of_its_jobs_timeout_warns(promtool: str, tmp_path: Path) -> None:
    rules_test(
        promtool,
        tmp_path,
        {
            # hourly: timeout 300 s, so above 240 s; nightly: 1800 s, above 1440 s.
            'cronwright_last_run_duration_seconds{job="hourly", instance="a"}': "200 250 30",
            'cronwright_last_run_duration_seconds{job="nightly", instance="a"}': "250 1400 1400",
        },
        (0, "CronwrightRunNearTimeout", []),
        (
            1,
            "CronwrightRunNearTimeout",
            [
                (
                    {"job": "hourly", "severity": "warning"},
                    {
                        "summary": "hourly ran near its timeout",
                        "description": "The last run of hourly took 4m 10s, over 80% of its"
                        " timeout_seconds 300: at the timeout a run is stopped and retried."
                        " Speed up the job or raise timeout_seconds in the manifest.",
                    },
                )
            ],
        ),
        (2, "CronwrightRunNearTimeout", []),
    )


def test_every_dashboard_query_parses_as_promql(promtool: str, tmp_path: Path) -> None:
    manifest = ops_manifest(tmp_path)
    board = yaml.safe_load(generate.render(manifest)[generate.DASHBOARD])  # JSON is YAML
    exprs = []
    stack = list(board["panels"])
    while stack:
        panel = stack.pop()
        stack += panel.get("panels", [])
        exprs += [t["expr"] for t in panel.get("targets", [])]
    assert len(exprs) == 8 + 7
    # Grafana's variables are not PromQL: a duration and a job name stand in for them.
    rules = [
        {
            "record": f"cronwright:panel_query_{i}",
            "expr": e.replace("$__rate_interval", "5m").replace("$job", "hourly"),
        }
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = tool(promtool, "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_live_metrics_endpoint_passes_promtool_check_metrics(
    promtool: str, tmp_path: Path
) -> None:
    metrics = observe.Metrics(load(REPO / "jobs.yaml"))
    runs: list[tuple[Status, float]] = [("succeeded", 250.0), ("retry", 300.0), ("duplicate", 0.01)]
    for status, seconds in runs:
        metrics.emit(
            MetricRecord(
                queue="mauntic-analytics-jobs",
                message_id="m",
                status=status,
                event_type="analytics.aggregate-hourly",
                duration_ms=seconds * 1000,
                attempt=1,
                slot="2026-10-31T10:00:00Z",
                rows=None,
            )
        )
    metrics.depth.labels(queue="mauntic-analytics-jobs", state="ready").set(3)
    metrics.missing.labels(job="aggregate-hourly").set(1)
    metrics.missing_age.labels(job="aggregate-hourly").set(120)

    async def scrape() -> str:
        async with observe.http_endpoint(metrics, 0, host="127.0.0.1") as server:
            port = observe.bound_port(server)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = (await reader.read()).decode()
            writer.close()
        head, _, body = raw.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 200 OK"), head
        return body

    body = run(scrape(), timeout=30)
    assert 'cronwright_last_run_duration_seconds{job="aggregate-hourly"} 300.0' in body
    done = tool(promtool, "check", "metrics", stdin=body)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_readmes_prometheus_configuration_is_valid_with_the_generated_rules(
    promtool: str, tmp_path: Path
) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (config,) = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", readme, re.S)
        if "job_name: cronwright" in block
    ]
    shutil.copy(REPO / "generated" / generate.ALERTS, tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(config, encoding="utf-8")
    done = tool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {repo_rule_count()} rules found" in done.stdout
    assert yaml.safe_load(config)["scrape_configs"][0]["honor_labels"] is True
