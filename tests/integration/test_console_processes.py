"""The console as the processes an operator starts: `cronwright ui` alone, and
`cronwright serve --ui-port` beside the jobs; each says where it listens, serves the
grid from the database, and stops on SIGTERM with exit 0."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools import consoledata
from devtools.ports import free_port
from tests.fixtures.aio import run
from tests.integration.console_support import TOKEN, fresh_minute

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(r"web console on (http://127\.0\.0\.1:\d+/) \(([^)]*)\)")


@contextmanager
def started(
    args: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """The process, its console's address and what it said of its mode; SIGTERM at the
    end (its exit code is checked)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
                line = proc.stderr.readline()
                if not line:
                    break
                seen.append(line)
                if found := ADDRESS.search(line):
                    break
            else:
                found = None
        assert found is not None, "".join(seen)
        yield proc, found.group(1), found.group(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(seen) + err


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
