"""One place decides what an environment overrides; generate, run and consume all use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.app.cli import main
from engine.core.errors import ConfigError
from engine.manifest.loader import load

REPO = Path(__file__).resolve().parents[2]


def test_an_environment_overrides_queue_bucket_and_cron_flag_and_keeps_the_rest() -> None:
    m = load(REPO / "jobs.yaml")
    staging = m.for_environment("staging")
    assert (staging.queue.name, staging.queue.dead_letter_queue) == (
        "mauntic-analytics-jobs-staging",
        "mauntic-analytics-jobs-staging-dlq",
    )
    assert staging.bucket is not None and m.bucket is not None
    assert staging.bucket.bucket_name == "mauntic-warmup-counters-staging"
    assert staging.bucket.preview_bucket_name == m.bucket.preview_bucket_name
    assert staging.worker.cron_enabled is False
    assert staging.queue.consumer == m.queue.consumer
    assert staging.jobs == m.jobs
    assert m.for_environment(None) is m


def test_an_environment_without_overrides_is_the_top_level() -> None:
    m = load(REPO / "jobs.yaml")
    production = m.for_environment("production")
    assert (production.queue, production.bucket, production.dataset, production.worker) == (
        m.queue,
        m.bucket,
        m.dataset,
        m.worker,
    )


def test_an_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load(REPO / "jobs.yaml").for_environment("prod")
    assert str(info.value) == "unknown environment 'prod'; known environments: production, staging"


@pytest.mark.parametrize("command", [["run", "analytics.aggregate-hourly"], ["consume", "--once"]])
def test_commands_refuse_an_unknown_environment_before_touching_anything(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-m", str(REPO / "jobs.yaml"), *command, "--env", "prod"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown environment 'prod'; known environments: production, staging\n"
    )
