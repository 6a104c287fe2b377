"""Defects 1 and 6 of the replaced system (drift between schedule, code and docs; weekday
numbers) cannot happen: everything is generated from jobs.yaml and checked for staleness."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.codegen import generate
from engine.core.errors import ManifestErrors
from engine.manifest.loader import load

REPO = Path(__file__).resolve().parents[2]


def test_a_cron_that_no_job_listens_to_is_caught_by_the_drift_check(project: Path) -> None:
    toml = project / "generated" / "wrangler.toml"
    toml.write_text(
        toml.read_text().replace('crons = ["0 * * * *",', 'crons = ["*/30 * * * *", "0 * * * *",')
    )
    assert main(["-m", str(project / "jobs.yaml"), "check"]) == 1


def test_every_generated_trigger_has_a_job_and_every_job_a_trigger() -> None:
    files = generate.render(load(REPO / "jobs.yaml"))
    config = tomllib.loads(files[generate.WRANGLER])
    crons = config["env"]["production"]["triggers"]["crons"]
    table = json.loads(files[generate.DISPATCH])
    assert config["triggers"]["crons"] == []  # the top level is for wrangler dev only
    assert crons == list(table["triggers"])
    assert all(table["triggers"][c] for c in crons)
    assert sorted(t for types in table["triggers"].values() for t in types) == sorted(table["jobs"])


def test_the_queue_never_gives_up_before_a_jobs_own_retry_policy() -> None:
    m = load(REPO / "jobs.yaml")
    preflight = generate.render(m)[generate.PREFLIGHT]
    most = max(j.retry.max_attempts for j in m.jobs)
    # Room beyond the jobs' own retries for hand-backs that are not job attempts.
    assert f"--message-retries {most - 1 + 3} " in preflight
    assert f"max_retries {most - 1 + 3}." in generate.render(m)[generate.DOCS]


def test_the_jobs_docs_are_generated_with_the_exact_message_types() -> None:
    m = load(REPO / "jobs.yaml")
    docs = generate.render(m)[generate.DOCS]
    for job in m.jobs:
        assert f"| `{job.type}` | {job.name} |" in docs
    # The misspellings of the replaced system's docs appear nowhere.
    assert "analytics.reset-warmup-daily" not in docs
    assert "analytics.generate-monthly-usage" not in docs


def test_hand_edited_docs_are_caught_by_the_drift_check(project: Path) -> None:
    docs = project / "generated" / "JOBS.md"
    docs.write_text(
        docs.read_text().replace("analytics.warmup-daily-reset", "analytics.reset-warmup-daily")
    )
    assert main(["-m", str(project / "jobs.yaml"), "check"]) == 1


def test_a_numeric_weekday_cannot_reach_cloudflare(project: Path) -> None:
    text = (project / "jobs.yaml").read_text().replace('cron: "0 4 * * *"', 'cron: "0 17 * * 1"')
    (project / "jobs.yaml").write_text(text)
    with pytest.raises(ManifestErrors) as info:
        load(project / "jobs.yaml")
    (only,) = info.value.errors
    assert only.message == "weekday '1' is ambiguous: SUN on Cloudflare, MON in classic cron"
    assert only.hint == "write SUN or MON"
