"""The console as the processes an operator starts: `cronwright ui` alone, and
`cronwright serve --ui-port` beside the jobs; each says where it listens, serves the
grid from the database, and stops on SIGTERM with exit 0."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from devtools import consoledata
from devtools.ports import free_port
from tests.fixtures.aio import run
from tests.integration.console_support import TOKEN, fresh_minute, started

pytestmark = pytest.mark.postgres


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read().decode()


def environ(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CRONWRIGHT_UI_TOKEN"}
    return {**env, "DATABASE_URL": dsn, **extra}


def test_ui_says_where_it_listens_serves_the_grid_and_stops_on_sigterm(
    tmp_path: Path, pg_dsn: str
) -> None:
    manifest = consoledata.write_project(tmp_path)
    run(consoledata.seed(pg_dsn, fresh_minute()))
    args = ["-m", str(manifest), "ui", "--port", "0", "--transport", "cloudflare"]
    with started(args, environ(pg_dsn)) as (_, url, mode):
        assert mode == "read-only: CRONWRIGHT_UI_TOKEN is not set"
        status, html = get(url)
        assert status == 200
        assert 'data-job="minutely"' in html and 'data-status="dead_lettered"' in html
    with started(args, environ(pg_dsn, CRONWRIGHT_UI_TOKEN=TOKEN)) as (_proc, url, mode):
        assert mode == "actions need a sign-in"
        assert get(f"{url}login")[0] == 200


def test_serve_with_a_ui_port_serves_the_console_beside_the_jobs(
    tmp_path: Path, pg_dsn: str
) -> None:
    manifest = consoledata.write_project(tmp_path)
    port = free_port()
    args = [
        "-m", str(manifest), "serve", "--consumers", "1", "--ui-port", str(port),
        "--reconcile-interval", "0",
    ]  # fmt: skip
    with started(args, environ(pg_dsn, CONSOLE_DEMO_CRON="false")) as (_, url, _mode):
        assert url == f"http://127.0.0.1:{port}/"
        status, html = get(f"{url}jobs/minutely")
        assert status == 200
        assert "postgres queue: 0 ready" in html  # serve's own queue
        assert "CONSOLE_DEMO_CRON off" in html
