"""A project without any Cloudflare key runs on the Postgres queue from end to end: no
command asks for Cloudflare credentials, because the manifest's transport (postgres, with
no `worker:` block) decides for every command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.aio import run
from tests.integration.localqueue_support import query
from tests.integration.service_support import ROOT

pytestmark = pytest.mark.postgres

MANIFEST = """\
version: 1
name: shop
jobs:
  refresh-totals:
    cron: "*/5 * * * *"
    sql: sql/refresh_totals.sql
"""


def cronwright(project: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env |= {"DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    env.pop("CRONWRIGHT_TRANSPORT", None)
    return subprocess.run(
        [sys.executable, "-m", "engine", "-m", str(project / "jobs.yaml"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_serve_only_project_never_asks_for_cloudflare_credentials(
    tmp_path: Path, pg_dsn: str
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "refresh_totals.sql").write_text("SELECT 1;\n")
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    run(
        query(
            pg_dsn,
            "INSERT INTO cronwright.jobs VALUES ('refresh-totals', now() - interval '1 hour') RETURNING job",
        )
    )

    results = {
        "validate": cronwright(tmp_path, pg_dsn, "validate"),
        "generate": cronwright(tmp_path, pg_dsn, "generate"),
        "reconcile --dry-run": cronwright(tmp_path, pg_dsn, "reconcile", "--dry-run"),
        "reconcile": cronwright(tmp_path, pg_dsn, "reconcile"),
        "enqueue": cronwright(tmp_path, pg_dsn, "enqueue", "refresh-totals"),
    }
    for what, done in results.items():
        assert done.returncode == 0, (what, done.stderr)
        assert "CLOUDFLARE" not in done.stdout + done.stderr, what
    assert "on postgres" in results["reconcile"].stderr
    assert "on postgres" in results["enqueue"].stdout
    queued = run(query(pg_dsn, "SELECT count(*) AS n FROM cronwright.queue"))
    assert queued[0]["n"] >= 1

    # A dead letter to replay: the poison message a consumer would have written.
    run(
        query(
            pg_dsn,
            "INSERT INTO cronwright.dead_letters (job, type, slot, body, reason, error_class,"
            " attempts) SELECT 'refresh-totals', 'refresh-totals', date_trunc('hour', now()),"
            " '{}', 'x', 'x', 1 RETURNING id",
        )
    )
    replay = cronwright(tmp_path, pg_dsn, "dead-letters", "replay", "--all")
    assert replay.returncode == 0, replay.stderr
    assert "CLOUDFLARE" not in replay.stdout + replay.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env |= {"DATABASE_URL": pg_dsn, "PYTHONPATH": str(ROOT)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "engine", "-m", str(tmp_path / "jobs.yaml"), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = 60
        while deadline and not run(
            query(pg_dsn, "SELECT 1 FROM cronwright.runs WHERE status = 'succeeded' LIMIT 1")
        ):
            assert serve.poll() is None, serve.communicate()
            deadline -= 1
            time.sleep(1)
        assert deadline, "serve ran nothing"
    finally:
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    assert "CLOUDFLARE" not in out + err
