"""A database where `cronwright db migrate` was not run (or not since an upgrade): every
command stops at once with the one-line hint to migrate, retries nothing and loses no
message."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.adapters.cfqueue import QueuesClient, Settings
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue
from engine.app.cli import main
from engine.app.localconsumer import LocalConsumer, LocalSettings
from engine.app.pullconsumer import PullConsumer
from engine.core.errors import NotMigrated
from engine.runtime.budget import DeliveryBudget
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN, CfQueuesApi, serve
from tests.integration.executor_support import FakeClock, RecordingSleep
from tests.integration.localqueue_support import (
    FLAKY_TEMPLATE,
    START,
    TEMPLATE,
    enqueue,
    probe_job,
    query,
    setup,
    write_project,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
HINT = "cronwright's schema is missing or out of date: run cronwright db migrate"
NO_SCHEMA = f'error: invalid_schema_name (3F000): schema "cronwright" does not exist; {HINT}\n'
MANIFEST = """\
version: 1
plan: paid
worker: {name: probe-worker, compatibility_date: "2026-04-01", cron_flag: ENABLE_CRON}
queue: {name: probe-jobs, binding: JOBS, dead_letter_queue: probe-jobs-dlq}
jobs:
  probe:
    type: test.probe
    cron: "0 * * * *"
    sql: sql/probe.sql
    window: {period: hour, offset: -1}
"""
SLOT = "2026-10-31T10:00:00Z"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "probe.sql").write_text("SELECT {{ window_start }};\n")
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    return tmp_path / "jobs.yaml"


def cli(
    manifest: Path, dsn: str, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", dsn)
        code = main(["-m", str(manifest), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_on_a_database_never_migrated_stops_at_once_with_the_hint(
    project: Path, pg_empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # One line and no metric line: no attempt was made, so none was retried.
    assert cli(project, pg_empty_dsn, capsys, "run", "probe", "--at", SLOT) == (
        1,
        "",
        NO_SCHEMA,
    )


def test_slots_on_a_database_never_migrated_says_to_migrate(
    project: Path, pg_empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    span = ("--from", "2026-10-31T00:00:00Z", "--to", "2026-10-31T03:00:00Z")
    assert cli(project, pg_empty_dsn, capsys, "slots", "probe", *span) == (
        1,
        "",
        f'error: undefined_table (42P01): relation "cronwright.jobs" does not exist; {HINT}\n',
    )


def test_serve_on_a_database_never_migrated_exits_1_with_the_hint(
    project: Path, pg_empty_dsn: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "-m", str(project), "serve"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": pg_empty_dsn},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    # The consumers' first claim or the scheduler's first tick, whichever fails first.
    last = proc.stderr.splitlines()[-1]
    assert re.fullmatch(
        r'error: (invalid_schema_name \(3F000\): schema "cronwright"'
        r'|undefined_table \(42P01\): relation "cronwright\.\w+")'
        rf" does not exist; {re.escape(HINT)}",
        last,
    ), proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_after_an_upgrade_without_migrate_names_the_missing_function(
    project: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(query(pg_dsn, "DROP FUNCTION cronwright.run_slot"))
    code, out, err = cli(project, pg_dsn, capsys, "run", "probe", "--at", SLOT)
    assert (code, out) == (1, "")
    assert re.fullmatch(
        r"error: undefined_function \(42883\): function cronwright\.run_slot\(text,"
        r" timestamp with time zone, [a-z ,\[\]]+\) does not exist; " + re.escape(HINT) + "\n",
        err,
    ), err
    ledger = run(query(pg_dsn, "SELECT (SELECT count(*) FROM cronwright.run_history) AS runs,"
                               " (SELECT count(*) FROM cronwright.dead_letters) AS letters"))  # fmt: skip
    assert ledger == [{"runs": 0, "letters": 0}]


def test_the_local_consumer_stops_and_releases_the_message_when_a_function_is_missing(
    pg_dsn: str, tmp_path: Path
) -> None:
    run(setup(pg_dsn))
    job = probe_job()
    run(enqueue(pg_dsn, job, [START]))
    run(query(pg_dsn, "DROP FUNCTION cronwright.run_slot"))
    manifest = write_project(tmp_path, job, templates={job.name: FLAKY_TEMPLATE})

    async def consume() -> None:
        async with Database.open(pg_dsn, max_size=4, session_reset=False) as db:
            executor = Executor(
                db=db, manifest=manifest, templates={job.template: FLAKY_TEMPLATE}, actions={},
                dead_letters=PgDeadLetters(db), metrics=Collect(), clock=FakeClock(),
                sleep=RecordingSleep(), rng=random.Random(0),
            )  # fmt: skip
            queue = PgQueue(db, "probe-jobs", clock=FakeClock())
            settings = LocalSettings(consumers=1, lease_seconds=60, idle_seconds=0.05)
            await LocalConsumer(
                queue=queue, executor=executor, settings=settings, max_messages=1
            ).run()

    with pytest.raises(NotMigrated) as caught:
        run(consume())
    assert str(caught.value).endswith(f"does not exist; {HINT}")
    # Back in the queue, not leased and not dead-lettered: it runs once the database is
    # migrated.
    left = run(query(pg_dsn, "SELECT lease_id FROM cronwright.queue"))
    assert left == [{"lease_id": None}]
    assert run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.dead_letters")) == [{"n": 0}]


@pytest.fixture
def api() -> Iterator[CfQueuesApi]:
    with serve() as api:
        api.create_queue("probe-jobs")
        api.create_queue("probe-jobs-dlq")
        yield api


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"type": "test.probe", "scheduledFor": "2026-10-31T10:00:00Z"}, "json"),  # its claim
        (b"\xff", "bytes"),  # the dead letter of a message that cannot run
    ],
)
def test_the_pull_consumer_stops_on_a_database_never_migrated_and_acks_nothing(
    pg_empty_dsn: str, api: CfQueuesApi, tmp_path: Path, body: object, content_type: str
) -> None:
    job = probe_job()
    manifest = write_project(tmp_path, job)
    api.send("probe-jobs", body, content_type=content_type)

    async def consume() -> None:
        settings = Settings(account_id=ACCOUNT, token=TOKEN, base_url=api.url)
        async with (
            Database.open(pg_empty_dsn, max_size=4) as db,
            QueuesClient(settings, sleep=RecordingSleep()) as client,
        ):
            ids = await client.queue_ids(["probe-jobs"])
            executor = Executor(
                db=db, manifest=manifest, templates={job.template: TEMPLATE}, actions={},
                dead_letters=PgDeadLetters(db), metrics=Collect(), clock=FakeClock(),
                sleep=RecordingSleep(), rng=random.Random(0),
            )  # fmt: skip
            consumer = PullConsumer(
                client=client,
                executor=executor,
                queue_id=ids["probe-jobs"],
                settings=manifest.queue.consumer,
                budget=DeliveryBudget(db, "probe-jobs", manifest.consumer_max_retries + 1),
            )
            await consumer.run(max_batches=1)

    with pytest.raises(NotMigrated) as caught:
        run(consume())
    assert str(caught.value).endswith(f"does not exist; {HINT}")
    # Neither acked nor handed back: its lease lapses and it is delivered again.
    assert api.calls("/messages/ack") == []
