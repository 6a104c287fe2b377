"""No command that reads DATABASE_URL ever prints its password: random printable-ASCII
passwords, in malformed and well-formed URLs, through every such command, against a real
Postgres (which refuses them) and the local Cloudflare Queues API. The password never
shows in stdout or stderr, whole or in any part of 4 or more characters, raw or
percent-encoded.

A part of the password may be ordinary text the command prints anyway ("post" of
"postgres"). So each run has a twin: the same URL with the password's letters and digits
rotated (a->b, 9->0, hex digits stay hex), which keeps the URL's shape and so the
command's words. A part leaks when it is printed for the password but not for its twin.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.app.cli import build_parser, main
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN, CfQueuesApi, serve
from tests.fixtures.postgres import PgServer

pytestmark = pytest.mark.postgres

MANIFEST = """\
version: 1
plan: paid
worker: {name: probe-worker, main: worker.js, compatibility_date: "2026-04-01", cron_flag: ENABLE_CRON}
queue:
  name: probe-jobs
  binding: JOBS
  dead_letter_queue: probe-jobs-dlq
  consumer: {type: http_pull}
jobs:
  probe:
    type: test.probe
    cron: "0 * * * *"
    sql: sql/probe.sql
    window: {period: hour, offset: -1}
"""

#: Every command that reads DATABASE_URL, as it is typed.
DB_COMMANDS = {
    "run": ["run", "probe", "--at", "2026-10-31T10:00:00Z"],
    "runs": ["runs"],
    "db migrate": ["db", "migrate"],
    "consume": ["consume", "--once"],
    "slots": ["slots", "probe", "--from", "2026-10-31T00:00:00Z", "--to", "2026-10-31T02:00:00Z"],
    "reconcile": ["reconcile", "--dry-run"],
    "enqueue": ["enqueue", "probe", "--at", "2026-10-31T10:00:00Z", "--transport", "postgres"],
    "serve": ["serve", "--consumers", "1"],
    "ui": ["ui", "--port", "0"],
    "pause": ["pause", "probe", "--reason", "maintenance"],
    "resume": ["resume", "probe"],
    "dead-letters list": ["dead-letters", "list"],
    "dead-letters replay": ["dead-letters", "replay", "1", "--run"],
    "dead-letters purge": ["dead-letters", "purge", "--before", "2026-10-31T00:00:00Z"],
    "prune": ["prune", "--older-than", "30"],
    "backfill": [
        "backfill",
        "probe",
        "--from",
        "2026-10-31T00:00:00Z",
        "--to",
        "2026-10-31T02:00:00Z",
    ],
}
#: The commands that never read it.
OTHER_COMMANDS = {
    "validate",
    "generate",
    "check",
    "check-actions",
    "schedule",
    "cron",
    "render",
    "init",
    "schema",
}

PRINTABLE = "".join(chr(c) for c in range(32, 127))
# Each class rotates within itself, so hex digits stay hex (a %-escape stays valid or not).
_CLASSES = ("0123456789", "abcdef", "ghijklmnopqrstuvwxyz", "ABCDEF", "GHIJKLMNOPQRSTUVWXYZ")
_ROTATE = str.maketrans("".join(_CLASSES), "".join(c[1:] + c[0] for c in _CLASSES))
SHAPES = {
    "raw in the userinfo": "postgresql://postgres:{raw}@127.0.0.1:{port}/postgres",
    "encoded in the userinfo": "postgresql://postgres:{encoded}@127.0.0.1:{port}/postgres",
    "encoded, with a bad port": "postgresql://postgres:{encoded}@127.0.0.1:{port}x/postgres",
    "raw, with a bad port": "postgresql://postgres:{raw}@127.0.0.1:x{port}/postgres",
    "raw in the query": "postgresql://postgres@127.0.0.1:{port}/postgres?password={raw}",
    "encoded in the query": "postgresql://postgres@127.0.0.1:{port}/postgres?password={encoded}",
    "raw, without a host": "postgresql://postgres:{raw}@/postgres",
}


def twin(password: str) -> str:
    return password.translate(_ROTATE)


def forms(password: str) -> set[str]:
    return {password, quote(password, safe=""), quote(password), quote_plus(password)}


def parts(text: str, size: int = 4) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def leaked(password: str, output: str, twin_output: str) -> list[str]:
    return sorted(
        part
        for form in forms(password)
        for part in parts(form)
        if part in output and part not in twin_output
    )


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from commands(sub, f"{prefix}{name} ")
                else:
                    yield f"{prefix}{name}"


@pytest.fixture(scope="module")
def api() -> Iterator[CfQueuesApi]:
    with serve() as api:
        api.create_queue("probe-jobs")
        api.create_queue("probe-jobs-dlq")
        yield api


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "sql").mkdir()
    (root / "jobs.yaml").write_text(MANIFEST)
    (root / "sql" / "probe.sql").write_text("SELECT {{ window_start }};\n")
    return root


def run_cli(argv: list[str], project: Path, url: str, api: CfQueuesApi) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "R2_", "PG"))}
    env |= {
        "DATABASE_URL": url,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_BASE_URL": api.url,
    }
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, env, clear=True),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(["-m", str(project / "jobs.yaml"), *argv])
    return code, out.getvalue() + err.getvalue()


def test_every_command_is_known_to_read_database_url_or_not() -> None:
    """A new command must be added to one of the lists, so its output gets this test."""
    assert set(commands(build_parser())) == set(DB_COMMANDS) | OTHER_COMMANDS


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("command", sorted(DB_COMMANDS))
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(password=st.text(alphabet=PRINTABLE, min_size=6, max_size=24))
def test_no_command_prints_any_part_of_the_password(
    command: str,
    password: str,
    shape: str,
    project: Path,
    api: CfQueuesApi,
    pg_server: PgServer,
) -> None:
    outputs = []
    for pw in (password, twin(password)):
        url = SHAPES[shape].format(raw=pw, encoded=quote(pw, safe=""), port=pg_server.port)
        code, output = run_cli(DB_COMMANDS[command], project, url, api)
        assert code in (1, 2), output  # refused: the password is wrong or the URL malformed
        outputs.append(output)
    assert leaked(password, *outputs) == [], outputs[0]
