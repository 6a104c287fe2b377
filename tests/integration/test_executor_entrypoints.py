"""The async entry points the CLI calls: run one slot, list the ledger."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from engine.app import wiring
from engine.app.cli import main
from engine.core.errors import ConfigError, MessageError
from engine.core.model import Job, Manifest
from engine.runtime.metrics import Collect, JsonLines
from tests.fixtures.aio import run
from tests.integration.executor_support import (
    EFFECT_SQL,
    NOW,
    SLOT,
    harness,
    make_job,
    make_manifest,
)

pytestmark = pytest.mark.postgres


def project(tmp_path: Path, *jobs: tuple[Job, str]) -> Manifest:
    for job, sql in jobs:
        (tmp_path / job.template).write_text(sql)
    return make_manifest(*(job for job, _ in jobs), path=str(tmp_path / "jobs.yaml"))


def test_run_reports_success_then_already_succeeded(pg_dsn: str, tmp_path: Path) -> None:
    job = make_job()
    manifest = project(tmp_path, (job, EFFECT_SQL))
    metrics = Collect()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            first = await wiring.run_job(
                manifest, job.type, SLOT, dsn=pg_dsn, metrics=metrics, clock=lambda: NOW
            )
            again = await wiring.run_job(
                manifest, job.name, SLOT, dsn=pg_dsn, metrics=metrics, clock=lambda: NOW
            )
            assert (first.status, first.succeeded) == ("succeeded", True)
            assert (again.status, again.succeeded) == ("duplicate", True)
            assert await h.counter() == 1
            assert [r.message_id for r in metrics.records] == ["cli-2026-10-31T10:00:00Z"] * 2

    run(main())


def test_run_without_at_runs_the_latest_slot(pg_dsn: str, tmp_path: Path) -> None:
    job = make_job()
    manifest = project(tmp_path, (job, EFFECT_SQL))

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]):
            outcome = await wiring.run_job(
                manifest,
                job.type,
                dsn=pg_dsn,
                metrics=Collect(),
                clock=lambda: SLOT + timedelta(minutes=42),
            )
            assert (outcome.status, outcome.slot) == ("succeeded", SLOT)

    run(main())


def test_run_of_a_failing_slot_is_not_succeeded(pg_dsn: str, tmp_path: Path) -> None:
    job = make_job()
    manifest = project(tmp_path, (job, "SELEC 1;\n"))

    async def main() -> None:
        async with harness(pg_dsn, [(job, "SELEC 1;\n")]):
            outcome = await wiring.run_job(
                manifest, job.type, SLOT, dsn=pg_dsn, metrics=Collect(), clock=lambda: NOW
            )
            assert (outcome.status, outcome.succeeded) == ("dead_lettered", False)

    run(main())


def test_run_of_an_unknown_job_names_the_known_ones(tmp_path: Path) -> None:
    manifest = project(tmp_path, (make_job(), EFFECT_SQL))
    with pytest.raises(MessageError) as caught:
        run(wiring.run_job(manifest, "test.nope", SLOT, dsn="postgresql://unused@127.0.0.1/x"))
    assert str(caught.value) == (
        "unknown job 'test.nope' (give a job name or its message type); did you mean 'test.probe'?"
    )


def test_run_of_a_job_nothing_resembles_lists_names_and_types(tmp_path: Path) -> None:
    manifest = project(tmp_path, (make_job(), EFFECT_SQL), (make_job(name="other"), EFFECT_SQL))
    with pytest.raises(MessageError) as caught:
        run(wiring.run_job(manifest, "zzz", SLOT, dsn="postgresql://unused@127.0.0.1/x"))
    assert str(caught.value) == (
        "unknown job 'zzz' (give a job name or its message type); "
        "known jobs (types): other (test.other), probe (test.probe)"
    )


def test_run_at_a_time_the_cron_does_not_fire_is_refused(tmp_path: Path) -> None:
    job = make_job()
    manifest = project(tmp_path, (job, EFFECT_SQL))
    with pytest.raises(MessageError) as caught:
        run(
            wiring.run_job(
                manifest,
                job.type,
                SLOT + timedelta(minutes=30),
                dsn="postgresql://unused@127.0.0.1/x",
            )
        )
    assert str(caught.value) == (
        "--at 2026-10-31T10:30:00Z is not a slot of probe (cron '0 * * * *'); the nearest "
        "slots are 2026-10-31T10:00:00Z (earlier) and 2026-10-31T11:00:00Z (later)"
    )


def test_run_at_a_time_off_the_minute_is_refused_naming_at(tmp_path: Path) -> None:
    job = make_job()
    manifest = project(tmp_path, (job, EFFECT_SQL))
    at = SLOT + timedelta(seconds=30)
    with pytest.raises(MessageError) as caught:
        run(wiring.run_job(manifest, job.type, at, dsn="postgresql://unused@127.0.0.1/x"))
    assert str(caught.value) == (
        "--at 2026-10-31T10:00:30+00:00 is not on a minute; use 2026-10-31T10:00:00Z"
    )


def test_database_url_must_be_set() -> None:
    with pytest.raises(ConfigError) as caught:
        wiring.database_url({})
    assert str(caught.value) == (
        "DATABASE_URL is not set; export DATABASE_URL=postgresql://user@host/db"
    )


def test_runs_lists_the_ledger_newest_first_and_filters_failures(
    pg_dsn: str, tmp_path: Path
) -> None:
    good, bad = make_job(name="good"), make_job(name="bad")
    manifest = project(tmp_path, (good, EFFECT_SQL), (bad, "SELEC 1;\n"))

    async def main() -> None:
        async with harness(pg_dsn, [(good, EFFECT_SQL), (bad, "SELEC 1;\n")]):
            for slot in (SLOT - timedelta(hours=1), SLOT):
                await wiring.run_job(
                    manifest, good.type, slot, dsn=pg_dsn, metrics=Collect(), clock=lambda: NOW
                )
            await wiring.run_job(
                manifest, bad.type, SLOT, dsn=pg_dsn, metrics=Collect(), clock=lambda: NOW
            )
        every = await wiring.list_runs(pg_dsn)
        assert [(r["job"], r["slot"], r["status"]) for r in every] == [
            ("bad", SLOT, "dead_lettered"),
            ("good", SLOT, "succeeded"),
            ("good", SLOT - timedelta(hours=1), "succeeded"),
        ]
        failed = await wiring.list_runs(pg_dsn, failed_only=True)
        assert [r["job"] for r in failed] == ["bad"]
        only_good = await wiring.list_runs(pg_dsn, job="good", limit=1)
        assert [(r["job"], r["slot"]) for r in only_good] == [("good", SLOT)]
        table = wiring.format_runs(failed).splitlines()
        assert table[0].split() == [
            "job",
            "slot",
            "status",
            "attempt",
            "rows",
            "duration_ms",
            "error_class",
            "error",
        ]
        assert table[1].split()[:4] == ["bad", "2026-10-31T10:00:00Z", "dead_lettered", "1"]
        assert table[1].endswith('syntax_error (42601): syntax error at or near "SELEC"')

    run(main())


def test_run_writes_one_metric_line_per_attempt_to_the_given_stream(
    pg_dsn: str, tmp_path: Path
) -> None:
    job = make_job()
    manifest = project(tmp_path, (job, EFFECT_SQL))
    stream = io.StringIO()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]):
            await wiring.run_job(
                manifest, job.type, SLOT, dsn=pg_dsn, metrics=JsonLines(stream), clock=lambda: NOW
            )

    run(main())
    assert stream.getvalue().count("\n") == 1
    assert '"status":"succeeded"' in stream.getvalue()


SECRET_ROW_SQL = """
CREATE TEMP TABLE cards (card text CONSTRAINT no_visa CHECK (card NOT LIKE '4111%'));
INSERT INTO cards VALUES ('4111-1111-1111-1111');
"""


def test_runs_hides_the_servers_detail_unless_verbose(pg_dsn: str, tmp_path: Path) -> None:
    job = make_job(name="cards")
    manifest = project(tmp_path, (job, SECRET_ROW_SQL))

    async def main() -> list[dict[str, object]]:
        async with harness(pg_dsn, [(job, SECRET_ROW_SQL)]):
            await wiring.run_job(
                manifest, job.type, SLOT, dsn=pg_dsn, metrics=Collect(), clock=lambda: NOW
            )
        return await wiring.list_runs(pg_dsn, failed_only=True)

    rows = run(main())
    error = (
        'integrity_constraint_violation (23514): new row for relation "cards" violates check '
        'constraint "no_visa"'
    )
    quiet = wiring.format_runs(rows).splitlines()[1]
    assert quiet.endswith(f"{error} (DETAIL hidden; --verbose shows it)")
    assert "4111" not in quiet
    loud = wiring.format_runs(rows, verbose=True).splitlines()[1]
    assert loud.endswith(f"{error} DETAIL: Failing row contains (4111-1111-1111-1111).")


CLI_MANIFEST = """\
version: 1
plan: paid
worker: {name: probe-worker, main: worker.js, compatibility_date: "2026-04-01", cron_flag: ENABLE_CRON}
queue: {name: probe-jobs, binding: JOBS, dead_letter_queue: probe-jobs-dlq}
jobs:
  probe:
    type: test.probe
    cron: "0 * * * *"
    sql: sql/probe.sql
    window: {period: hour, offset: -1}
"""


def test_cli_run_of_a_job_whose_table_is_missing_says_to_migrate_and_names_the_class_once(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "probe.sql").write_text("SELECT * FROM probe_missing;\n")
    (tmp_path / "jobs.yaml").write_text(CLI_MANIFEST)
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    argv = ["-m", str(tmp_path / "jobs.yaml"), "run", "probe", "--at", "2026-10-31T10:00:00Z"]
    assert main(argv) == 1
    assert capsys.readouterr().out == (
        "test.probe slot 2026-10-31T10:00:00Z: dead_lettered (permanent error: undefined_table "
        '(42P01): relation "probe_missing" does not exist; if the schema is behind the '
        "project, run `cronwright db migrate`)\n"
    )
