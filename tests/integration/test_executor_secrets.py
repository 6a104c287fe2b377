"""The password of DATABASE_URL appears nowhere in the output of a failing run: not on
stdout or stderr, not in logs, not in the outcome, not in the exception or its chain."""

from __future__ import annotations

import logging
import socket
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest

from engine.app import wiring
from engine.core.errors import DatabaseError
from engine.core.model import Job
from engine.runtime.outcome import Outcome
from tests.fixtures.aio import run
from tests.fixtures.postgres import PgServer
from tests.integration.executor_support import (
    EFFECT_SQL,
    NOW,
    SLOT,
    harness,
    make_job,
    make_manifest,
)

pytestmark = pytest.mark.postgres

WRONG_PASSWORD = "Wr0ng!p@ss/w:rd%"


def write_project(tmp_path: Path, job: Job, sql: str) -> Path:
    (tmp_path / job.template).write_text(sql)
    return tmp_path / "jobs.yaml"


def forms(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote(password)]


def assert_nowhere(password: str, *texts: str) -> None:
    for text in texts:
        for form in forms(password):
            assert form not in text


def chain_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


# The job's error message would quote the password: the adapter must mask it.
LEAKY_SQL = "SELECT {{ params.probe }}::text::int;\n"


def test_failing_job_run_never_shows_the_password(
    pg_server: PgServer,
    pg_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    job = make_job(params={"probe": pg_server.password})
    manifest = make_manifest(job, path=str(write_project(tmp_path, job, LEAKY_SQL)))

    async def main() -> tuple[Outcome, str]:
        async with harness(pg_dsn, [(job, LEAKY_SQL)]) as h:
            outcome = await wiring.run_job(manifest, job.type, SLOT, dsn=pg_dsn, clock=lambda: NOW)
            stored = repr(await h.ledger()) + repr(await h.dead_letters())
        return outcome, stored

    outcome, stored = run(main())
    assert (outcome.status, outcome.error_class) == ("dead_lettered", "data_exception")
    assert outcome.reason == (
        'permanent error: data_exception (22P02): invalid input syntax for type integer: "***"'
    )
    captured = capsys.readouterr()
    assert '"status":"dead_lettered"' in captured.err  # the metric line went to stderr
    assert_nowhere(
        pg_server.password, captured.out, captured.err, caplog.text, repr(outcome), stored
    )


def test_wrong_password_error_masks_the_password_everywhere(
    pg_server: PgServer,
    pg_template: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    job = make_job()
    manifest = make_manifest(job, path=str(write_project(tmp_path, job, EFFECT_SQL)))
    dsn = (
        f"postgresql://{pg_server.user}:{quote(WRONG_PASSWORD, safe='')}"
        f"@{pg_server.host}:{pg_server.port}/{pg_template}?sslmode=disable"
    )
    with pytest.raises(DatabaseError) as caught:
        run(wiring.run_job(manifest, job.type, SLOT, dsn=dsn, clock=lambda: NOW))
    err = caught.value
    assert (err.error_class, err.transient) == ("invalid_password", False)
    assert str(err) == (
        f"cannot connect to postgresql://{pg_server.user}:***@{pg_server.host}:{pg_server.port}"
        f"/{pg_template}?sslmode=disable: invalid_password (28P01): password authentication"
        f' failed for user "{pg_server.user}"'
    )
    captured = capsys.readouterr()
    assert_nowhere(WRONG_PASSWORD, captured.out, captured.err, caplog.text, chain_text(err))


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_error_masks_the_password(
    pg_server: PgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job = make_job()
    manifest = make_manifest(job, path=str(write_project(tmp_path, job, EFFECT_SQL)))
    port = unused_port()
    dsn = f"postgresql://app:{quote(pg_server.password, safe='')}@127.0.0.1:{port}/x"
    with pytest.raises(DatabaseError) as caught:
        run(wiring.run_job(manifest, job.type, SLOT, dsn=dsn, clock=lambda: NOW))
    err = caught.value
    assert (err.error_class, err.transient) == ("connection", True)
    assert str(err).startswith(f"cannot connect to postgresql://app:***@127.0.0.1:{port}/x: ")
    assert_nowhere(pg_server.password, caplog.text, chain_text(err))
