"""The README's python action, as a user would run it: its job, module and migration copied
out of the README into a new project, checked, migrated and run with the `cronwright`
command against a real Postgres and a CRM stand-in on 127.0.0.1 that honours
Idempotency-Key. The CRM's first answer for a key is a 503, so the example's RetryLater
is exercised; however often the slot runs, the CRM applies its export once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aio import run
from tests.integration.localqueue_support import query

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


def readme_block(language: str, holding: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(rf"```{language}\n(.*?)```", readme, re.S) if holding in b]
    return str(block)


@dataclass
class Crm:
    """An API that keeps its first successful answer for each Idempotency-Key and returns
    it for a repeat, applying nothing twice; a key's first request gets a 503."""

    requests: list[tuple[str, Any]] = field(default_factory=list)
    applied: list[tuple[str, Any]] = field(default_factory=list)
    answers: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, key: str, body: Any) -> tuple[int, bytes]:
        with self.lock:
            first = all(k != key for k, _ in self.requests)
            self.requests.append((key, body))
            if key in self.answers:
                return 200, self.answers[key]
            if first:
                return 503, b'{"error": "busy"}'
            self.applied.append((key, body))
            self.answers[key] = json.dumps({"accepted": len(body["signups"])}).encode()
            return 200, self.answers[key]


@pytest.fixture
def crm() -> Iterator[tuple[Crm, str]]:
    api = Crm()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, text = api.answer(self.headers["Idempotency-Key"], body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}/v1/signups"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def cronwright(root: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=root,
        env={**os.environ, "DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readmes_python_action_calls_the_api_once_per_slot_through_retries_and_reruns(
    pg_dsn: str, tmp_path: Path, crm: tuple[Crm, str]
) -> None:
    api, url = crm
    manifest = readme_block("yaml", "tasks.crm:push_signups")
    assert '"https://crm.example.com/v1/signups"' in manifest
    manifest = manifest.replace("https://crm.example.com/v1/signups", url)
    # Retries a second apart, not the default 30 s.
    manifest += "    retry: {max_attempts: 3, initial_delay_seconds: 1, max_delay_seconds: 1}\n"
    (tmp_path / "jobs.yaml").write_text(manifest)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "crm.py").write_text(readme_block("python", "async def push_signups"))
    migrations = tmp_path / "sql" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "0001_signups.sql").write_text(  # the user's own table, already there
        "CREATE TABLE signups (id integer PRIMARY KEY, email text NOT NULL,"
        " created_at timestamptz NOT NULL);\n"
    )
    (migrations / "0002_crm_exports.sql").write_text(
        readme_block("sql", "CREATE TABLE crm_exports")
    )

    checked = cronwright(tmp_path, pg_dsn, "check-actions")
    assert (checked.returncode, checked.stdout) == (
        0,
        "jobs.yaml: ok (1 python action: tasks.crm:push_signups)\n",
    )
    assert cronwright(tmp_path, pg_dsn, "db", "migrate").returncode == 0

    # The latest slot (five past an hour): its retries may run until the next one.
    now = datetime.now(UTC)
    slot = now.replace(minute=5, second=0, microsecond=0)
    slot -= timedelta(hours=1) if slot > now else timedelta(0)
    start = slot.replace(minute=0) - timedelta(hours=1)
    signups = [(1, "a@example.com", start), (2, "b@example.com", start + timedelta(minutes=59))]
    signups += [(3, "c@example.com", start + timedelta(minutes=30))]
    signups += [(4, "late@example.com", slot.replace(minute=0))]  # the next window's
    for row in signups:
        run(query(pg_dsn, "INSERT INTO signups VALUES ($1, $2, $3) RETURNING id", *row))
    at = slot.strftime("%Y-%m-%dT%H:%M:%SZ")
    key = f"push-signups:{slot.isoformat()}"
    export = {
        "signups": [
            {"id": 1, "email": "a@example.com"},
            {"id": 2, "email": "b@example.com"},
            {"id": 3, "email": "c@example.com"},
        ]
    }

    first = cronwright(tmp_path, pg_dsn, "run", "push-signups", "--at", at)
    assert (first.returncode, first.stdout) == (0, f"push-signups slot {at}: succeeded rows=3\n")
    assert api.requests == [(key, export), (key, export)]  # a 503, then applied
    assert api.applied == [(key, export)]

    again = cronwright(tmp_path, pg_dsn, "run", "push-signups", "--at", at)
    assert (again.returncode, again.stdout) == (0, f"push-signups slot {at}: duplicate\n")
    assert len(api.requests) == 2  # a slot that succeeded is not run again

    rerun = cronwright(tmp_path, pg_dsn, "run", "push-signups", "--at", at, "--rerun")
    assert (rerun.returncode, rerun.stdout) == (0, f"push-signups slot {at}: succeeded rows=3\n")
    assert api.requests == [(key, export)] * 3  # asked again, with the same key
    assert api.applied == [(key, export)]  # applied once all the same

    assert run(query(pg_dsn, "SELECT slot, signups FROM crm_exports")) == [
        {"slot": slot, "signups": 3}
    ]
    history = run(
        query(
            pg_dsn,
            "SELECT status, error_class, rows FROM cronwright.run_history ORDER BY finished_at",
        )
    )
    assert history == [
        {"status": "failed", "error_class": "retry_later", "rows": None},
        {"status": "succeeded", "error_class": None, "rows": 3},
        {"status": "succeeded", "error_class": None, "rows": 3},
    ]
