"""Quiet outages, in a real process: while the database of a running `serve` is stopped,
the service says so once per distinct error per interval, with how long it has lasted,
says once that it is back, prints no traceback (asyncpg's pool's own included), and
goes on running slots afterwards."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from devtools import pgserver
from tests.fixtures.aio import run
from tests.fixtures.need import missing
from tests.integration.localqueue_support import query
from tests.integration.service_support import APPEND, cronwright, prepare, wait_until, write_project

pytestmark = pytest.mark.postgres

OUTAGE_SECONDS = 25.0


def pg_ctl(server: pgserver.PgServer, *args: str) -> None:
    argv = [*pgserver._as_postgres(), server.pg_ctl, "-D", str(server.datadir), *args]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def test_a_database_outage_is_a_line_per_error_and_one_when_it_is_back(tmp_path: Path) -> None:
    try:
        server = pgserver.start()
    except pgserver.PostgresUnavailable as exc:
        missing(str(exc))
    try:
        run(pgserver.admin(server, 'CREATE DATABASE "outage"'))
        dsn = server.dsn("outage")
        run(pgserver.apply_migrations(dsn))
        prepare(dsn)
        manifest = write_project(tmp_path, {"tick": {"template": APPEND}})
        args = ("serve", "--consumers", "2", "--reconcile-interval", "5", "--metrics-port", "0")
        proc = cronwright(manifest, dsn, *args)
        try:
            wait_until(
                lambda: run(query(dsn, "SELECT count(*) AS n FROM cronwright.jobs")) == [{"n": 1}],
                "serve up",
            )
            time.sleep(2)
            pg_ctl(server, "-m", "fast", "stop")
            time.sleep(OUTAGE_SECONDS)
            pg_ctl(server, "-l", str(server.datadir.parent / "server.log"), "-w", "start")
            # Back: the next minute's slot runs.
            wait_until(
                lambda: run(query(dsn, "SELECT count(*) AS n FROM probe.applied")) != [{"n": 0}],
                "a slot run after the outage",
                timeout=75,
            )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        # The log's lines (the metrics, JSON lines, aside).
        lines = [line for line in err.splitlines() if not line.startswith("{")]
        assert not [line for line in lines if "Traceback" in line], err
        away = [line for line in lines if "database unreachable for" in line]
        back = [line for line in lines if "database reachable again after" in line]
        # Within one interval (60 s) each distinct error once: a handful, not hundreds.
        assert 1 <= len(away) <= 6, lines
        assert len(back) == 1, lines
        lasted = float(back[0].split("reachable again after ")[1].split(" s")[0])
        assert lasted >= OUTAGE_SECONDS - 5, back
        assert len(lines) <= 15, lines
    finally:
        pgserver.stop(server)
