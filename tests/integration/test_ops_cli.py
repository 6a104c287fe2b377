"""The operator's commands end to end through the CLI, on a real Postgres."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.adapters.pg import Database
from engine.app.cli import main
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

MANIFEST = """\
version: 1
plan: paid
worker: {name: ops-worker, compatibility_date: "2026-04-01", cron_flag: ENABLE_CRON}
queue: {name: ops-jobs, binding: JOBS, dead_letter_queue: ops-jobs-dlq}
retention: {runs_days: 7}
jobs:
  probe:
    type: test.probe
    cron: "0 * * * *"
    sql: sql/probe.sql
    window: {period: hour, offset: -1}
    retry: {max_attempts: 1}
"""
TEMPLATE = """\
INSERT INTO ops.effects (slot, rerun) VALUES ({{ window_start }}, {{ rerun }});
"""
SLOT = "2026-10-31T10:00:00Z"
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@pytest.fixture
def project(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "probe.sql").write_text(TEMPLATE)
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    monkeypatch.setenv("DATABASE_URL", pg_dsn)

    async def setup() -> None:
        async with Database.open(pg_dsn) as db, db.transaction() as tx:
            await tx.script(
                "CREATE SCHEMA ops; CREATE TABLE ops.effects (slot timestamptz, rerun boolean);"
            )

    run(setup())
    return tmp_path / "jobs.yaml"


def cli(manifest: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-m", str(manifest), *argv])
    out, err = capsys.readouterr()
    return code, STAMP.sub("T", out), STAMP.sub("T", err)


def test_pause_and_resume_keep_history_and_schedule_shows_both_pauses(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project, capsys, "pause", "probe", "--reason", "db upgrade") == (
        0,
        "probe paused from T (db upgrade)\n",
        "",
    )
    assert cli(project, capsys, "pause", "test.probe") == (
        0,
        "probe is already paused since T (db upgrade)\n",
        "",
    )
    code, out, _ = cli(project, capsys, "schedule", "--next", "1")
    assert code == 0
    assert out.split("\n\n", 1)[1].splitlines()[:2] == [
        "probe  [test.probe]",
        "  pause    paused at runtime since T (db upgrade)",
    ]
    assert cli(project, capsys, "resume", "probe") == (
        0,
        "probe resumed at T; slots from T until then stay paused (never caught up)\n",
        "",
    )
    assert cli(project, capsys, "resume", "probe") == (1, "", "probe is not paused\n")
    assert cli(project, capsys, "pause", "nope")[0] == 2


def test_run_rerun_recomputes_and_runs_history_marks_the_current_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project, capsys, "run", "test.probe", "--at", SLOT)[:2] == (
        0,
        f"test.probe slot {SLOT}: succeeded rows=1\n".replace(SLOT, "T"),
    )
    assert cli(project, capsys, "run", "test.probe", "--at", SLOT)[:2] == (
        0,
        "test.probe slot T: duplicate\n",
    )
    assert cli(project, capsys, "run", "test.probe", "--at", SLOT, "--rerun")[:2] == (
        0,
        "test.probe slot T: succeeded rows=1\n",
    )
    code, out, _ = cli(project, capsys, "runs", "--history")
    assert code == 0
    rows = [line.split()[:4] for line in out.splitlines()]
    assert rows == [
        ["current", "job", "slot", "status"],
        ["*", "probe", "T", "succeeded"],
        ["probe", "T", "succeeded", "1"],
    ]


def test_dead_letters_commands_and_prune(
    project: Path, capsys: pytest.CaptureFixture[str], pg_dsn: str
) -> None:
    async def break_and_letter() -> None:
        async with Database.open(pg_dsn) as db, db.transaction() as tx:
            await tx.execute("ALTER TABLE ops.effects ADD CHECK (rerun)")  # 23514: permanent

    run(break_and_letter())
    code, out, _ = cli(project, capsys, "run", "test.probe", "--at", SLOT)
    assert (code, out.split(": ")[1].split()[0]) == (1, "dead_lettered")
    code, out, _ = cli(project, capsys, "dead-letters", "list", "--json")
    [letter] = [json.loads(line) for line in out.splitlines()]
    assert (letter["job"], letter["slot"], letter["error_class"], letter["replayed_as"]) == (
        "probe",
        "T",  # the slot, as every timestamp in the output, masked
        "integrity_constraint_violation",
        None,
    )
    # The server's DETAIL quotes the failing row: shown only with --verbose.
    assert letter["reason"].endswith("(DETAIL hidden; --verbose shows it)")
    assert "Failing row contains" not in letter["reason"]
    verbose = cli(project, capsys, "dead-letters", "list", "--json", "--verbose")[1]
    assert "Failing row contains" in json.loads(verbose)["reason"]
    assert cli(project, capsys, "dead-letters", "replay") == (
        2,
        "",
        "error: name the dead letters to replay (IDs) or pass --all; see cronwright"
        " dead-letters replay --help\n",
    )
    assert cli(project, capsys, "dead-letters", "replay", "999", "--run")[:2] == (
        1,
        "dead letter 999: ? slot ?: missing (no such dead letter)\n",
    )

    async def fix() -> None:
        async with Database.open(pg_dsn) as db, db.transaction() as tx:
            await tx.execute("ALTER TABLE ops.effects DROP CONSTRAINT effects_rerun_check")

    run(fix())
    id_ = str(letter["id"])
    assert cli(project, capsys, "dead-letters", "replay", id_, "--run")[:2] == (
        0,
        f"dead letter {id_}: probe slot T: succeeded\n",
    )
    assert cli(project, capsys, "dead-letters", "replay", "--all", "--run")[:2] == (
        0,
        "no dead letters to replay\n",
    )
    assert cli(project, capsys, "dead-letters", "purge", "--before", "2100-01-01T00:00:00Z") == (
        0,
        "purged 1 dead letter created before T\n",
        "",
    )
    assert cli(project, capsys, "dead-letters", "list")[1] == (
        "id  job  slot  error_class  attempts  created_at  replayed_as  reason\n"
    )
    assert cli(project, capsys, "prune")[:2] == (
        0,
        "deleted 0 superseded runs older than 7 days and 0 replayed or purged dead letters"
        " older than 90 days\n",
    )


def test_prune_older_than_0_deletes_every_superseded_run_and_keeps_the_current_ones(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project, capsys, "run", "test.probe", "--at", SLOT)[0] == 0
    assert cli(project, capsys, "run", "test.probe", "--at", SLOT, "--rerun")[0] == 0
    assert cli(project, capsys, "prune", "--older-than", "1")[:2] == (
        0,
        "deleted 0 superseded runs older than 1 day and 0 replayed or purged dead letters"
        " older than 1 day\n",
    )
    assert cli(project, capsys, "prune", "--older-than", "0") == (
        0,
        "deleted 1 superseded run and 0 replayed or purged dead letters, of any age\n",
        "",
    )
    out = cli(project, capsys, "runs", "--history")[1]
    assert [line.split()[:4] for line in out.splitlines()] == [
        ["current", "job", "slot", "status"],
        ["*", "probe", "T", "succeeded"],
    ]
    with pytest.raises(SystemExit) as refused:
        main(["-m", str(project), "prune", "--older-than", "-1"])
    assert (refused.value.code, capsys.readouterr().err.splitlines()[-1]) == (
        2,
        "cronwright prune: error: argument --older-than: '-1' is not a whole number of days"
        " (0 or more)",
    )


def test_prune_deletes_the_notifications_sent_or_given_up_with_the_run_history(
    project: Path, capsys: pytest.CaptureFixture[str], pg_dsn: str
) -> None:
    async def setup() -> None:
        async with Database.open(pg_dsn) as db, db.transaction() as tx:
            await tx.script(
                "INSERT INTO cronwright.notifications (kind, subject, target, title, body,"
                " created_at, sent_at, gave_up_at) VALUES"
                " ('dead_letter', 'dead letter 1', 'json://x', 't', 'b', now() - interval"
                " '8 days', now(), NULL),"
                " ('dead_letter', 'dead letter 2', 'json://x', 't', 'b', now() - interval"
                " '8 days', NULL, now()),"
                " ('dead_letter', 'dead letter 3', 'json://x', 't', 'b', now() - interval"
                " '8 days', NULL, NULL),"  # still to send: kept
                " ('dead_letter', 'dead letter 4', 'json://x', 't', 'b', now(), now(), NULL)"
            )

    run(setup())
    assert cli(project, capsys, "prune")[:2] == (
        0,
        "deleted 0 superseded runs, 2 notifications sent or given up older than 7 days and 0"
        " replayed or purged dead letters older than 90 days\n",
    )
    assert cli(project, capsys, "prune", "--older-than", "0")[1] == (
        "deleted 0 superseded runs, 1 notification sent or given up and 0 replayed or purged"
        " dead letters, of any age\n"
    )
