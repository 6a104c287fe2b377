"""observe.Metrics: the histogram's buckets from the manifest's timeouts, series that exist
from the start, and the gauges the generated alerts read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.app.observe import Metrics
from engine.core.durations import duration_buckets, near_timeout_seconds
from engine.manifest.loader import load
from engine.runtime.metrics import MetricRecord
from engine.runtime.notices import KINDS
from engine.runtime.outcome import STATUSES, Status
from tests.fixtures.ops_manifest import ops_manifest

REPO = Path(__file__).resolve().parents[2]


def record(status: Status, seconds: float, event_type: str | None = "ops.hourly") -> MetricRecord:
    return MetricRecord(
        queue="ops-jobs",
        message_id="m",
        status=status,
        event_type=event_type,
        duration_ms=seconds * 1000,
        attempt=1,
        slot="2026-10-31T10:00:00Z",
        rows=None,
    )


def lines(metrics: Metrics) -> set[str]:
    return set(metrics.exposition().decode().splitlines())


def test_duration_buckets_run_to_the_longest_timeout_with_each_timeout_and_its_80_percent() -> None:
    # The analytics jobs' timeouts: 300, 600 and 1800 s.
    assert duration_buckets(load(REPO / "jobs.yaml").jobs) == (
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
        240.0, 250.0, 300.0, 480.0, 500.0, 600.0, 1000.0, 1440.0, 1800.0,
    )  # fmt: skip


def test_a_timeout_that_is_not_round_gets_its_own_near_timeout_mark(tmp_path: Path) -> None:
    odd = replace(ops_manifest(tmp_path).jobs[0], timeout_seconds=7)
    assert near_timeout_seconds(odd) == 5.6
    assert duration_buckets([odd]) == (
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 5.6, 7.0,
    )  # fmt: skip


def test_the_run_histogram_uses_the_manifests_buckets(tmp_path: Path) -> None:
    metrics = Metrics(ops_manifest(tmp_path))
    metrics.emit(record("succeeded", 250))
    found = lines(metrics)
    assert 'cronwright_run_duration_seconds_bucket{job="hourly",le="240.0"} 0.0' in found
    assert 'cronwright_run_duration_seconds_bucket{job="hourly",le="250.0"} 1.0' in found
    assert 'cronwright_run_duration_seconds_bucket{job="hourly",le="1800.0"} 1.0' in found
    assert not any('le="2500.0"' in line for line in found)


def test_every_jobs_run_counters_exist_at_zero_before_its_first_run(tmp_path: Path) -> None:
    # A counter born at 1 shows Prometheus no increase: the first dead letter would not alert.
    found = lines(Metrics(ops_manifest(tmp_path)))
    for job in ("hourly", "nightly", "parked"):
        for status in STATUSES:
            assert f'cronwright_runs_total{{job="{job}",status="{status}"}} 0.0' in found
        assert f'cronwright_run_duration_seconds_count{{job="{job}"}} 0.0' in found
    assert 'cronwright_runs_total{job="unknown",status="dead_lettered"} 0.0' in found


def test_notification_counters_exist_at_zero_for_every_kind_and_count_each_try(
    tmp_path: Path,
) -> None:
    metrics = Metrics(ops_manifest(tmp_path))
    found = lines(metrics)
    for kind in KINDS:
        for outcome in ("sent", "retry", "given_up"):
            line = f'cronwright_notifications_total{{kind="{kind}",outcome="{outcome}"}} 0.0'
            assert line in found
    metrics.notified("missing", "retry")
    metrics.notified("missing", "given_up")
    metrics.notified("missing", "given_up")
    found = lines(metrics)
    assert 'cronwright_notifications_total{kind="missing",outcome="given_up"} 2.0' in found
    assert 'cronwright_notifications_total{kind="missing",outcome="retry"} 1.0' in found


def test_last_run_duration_follows_the_runs_that_did_the_jobs_work(tmp_path: Path) -> None:
    metrics = Metrics(ops_manifest(tmp_path))
    assert not any(x.startswith("cronwright_last_run_duration_seconds{") for x in lines(metrics))
    metrics.emit(record("succeeded", 250))
    metrics.emit(record("duplicate", 0.002))  # a redelivery: the job did not run
    metrics.emit(record("paused", 0.001))
    assert 'cronwright_last_run_duration_seconds{job="hourly"} 250.0' in lines(metrics)
    metrics.emit(record("retry", 300))  # stopped at its timeout
    assert 'cronwright_last_run_duration_seconds{job="hourly"} 300.0' in lines(metrics)
    metrics.emit(record("dead_lettered", 1.5))
    assert 'cronwright_last_run_duration_seconds{job="hourly"} 1.5' in lines(metrics)


def test_each_jobs_timeout_is_a_gauge_for_the_dashboard(tmp_path: Path) -> None:
    found = lines(Metrics(ops_manifest(tmp_path)))
    assert {
        'cronwright_job_timeout_seconds{job="hourly"} 300.0',
        'cronwright_job_timeout_seconds{job="nightly"} 1800.0',
        'cronwright_job_timeout_seconds{job="parked"} 300.0',
    } <= found


def test_a_message_of_no_known_type_counts_under_unknown(tmp_path: Path) -> None:
    metrics = Metrics(ops_manifest(tmp_path))
    metrics.emit(record("dead_lettered", 0.001, event_type="nope"))
    metrics.emit(record("dead_lettered", 0.001, event_type=None))
    found = lines(metrics)
    assert 'cronwright_runs_total{job="unknown",status="dead_lettered"} 2.0' in found
    assert not any('job="nope"' in line for line in found)


def missing_lines(metrics: Metrics) -> set[str]:
    return {x for x in lines(metrics) if x.startswith(("cronwright_missing", "cronwright_oldest"))}


def test_the_missing_slot_gauges_start_at_zero_and_follow_each_refresh_back_to_zero(
    tmp_path: Path,
) -> None:
    metrics = Metrics(ops_manifest(tmp_path))
    zero = {
        'cronwright_missing_slots{job="hourly"} 0.0',
        'cronwright_missing_slots{job="nightly"} 0.0',
        'cronwright_oldest_missing_slot_age_seconds{job="hourly"} 0.0',
        'cronwright_oldest_missing_slot_age_seconds{job="nightly"} 0.0',
    }
    assert missing_lines(metrics) == zero  # the manifest-paused job has none
    now = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    missed = [now - timedelta(hours=2), now - timedelta(hours=1)]
    metrics.set_missing({"hourly": missed, "parked": [now]}, now)
    assert missing_lines(metrics) == {
        'cronwright_missing_slots{job="hourly"} 2.0',
        'cronwright_missing_slots{job="nightly"} 0.0',
        'cronwright_oldest_missing_slot_age_seconds{job="hourly"} 7200.0',
        'cronwright_oldest_missing_slot_age_seconds{job="nightly"} 0.0',
    }
    metrics.set_missing({}, now + timedelta(minutes=1))  # run since
    assert missing_lines(metrics) == zero
