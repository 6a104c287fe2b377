"""A `serve` or `consume --transport postgres` process on an accelerated clock, for the
tests that restart, kill or starve one, and its project: probe jobs whose every
application leaves a row, so that an oracle can count them.

    python -m tests.integration.service_support SPEC.json

runs :func:`engine.app.service.run` with the options in SPEC (DATABASE_URL from the
environment) and prints ``ready`` once it is up.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.simclock import SimClock

ROOT = Path(__file__).resolve().parents[2]

SETUP_SQL = """
CREATE SCHEMA IF NOT EXISTS probe;
CREATE TABLE IF NOT EXISTS probe.applied (
    job text NOT NULL, slot timestamptz NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS probe.refreshed (id integer PRIMARY KEY, slot timestamptz NOT NULL);
"""
# Append-only: a slot applied twice leaves two rows.
APPEND = """
INSERT INTO probe.applied (job, slot) VALUES ({{ job.name }}, {{ slot }});
"""
# A refresh-style job: one row holds the slot it was refreshed for; every application is
# also appended, in commit order, for the oracle.
REFRESH = """
INSERT INTO probe.refreshed (id, slot) VALUES (1, {{ slot }})
ON CONFLICT (id) DO UPDATE SET slot = EXCLUDED.slot;
INSERT INTO probe.applied (job, slot) VALUES ({{ job.name }}, {{ slot }});
"""
FAILING = """
SELECT 1 / 0;
"""


#: Job keys passed through to the manifest as they are (JSON is YAML's flow style).
PASSED = ("catch_up", "timeout_seconds", "notify", "healthcheck")


def manifest_yaml(
    jobs: dict[str, dict[str, Any]], *, notify: list[dict[str, Any]] | None = None
) -> str:
    """A serve-only manifest of every-minute jobs: name -> {template, catch_up, notify,
    ...}, or {python: "module:function", params, ...} for a python action; ``notify``: the
    top level's targets."""
    lines = [
        "version: 1",
        "name: probe",
        "queue: {name: probe-jobs, binding: JOBS, dead_letter_queue: probe-dlq}",
    ]
    if notify is not None:
        lines.append(f"notify: {json.dumps(notify)}")
    lines.append("jobs:")
    for name, job in jobs.items():
        lines += [
            f"  {name}:",
            f'    cron: "{job.get("cron", "* * * * *")}"',
            f'    action: {{python: "{job["python"]}"}}'
            if "python" in job
            else f"    sql: sql/{name}.sql",
        ]
        if "params" in job:
            lines.append(f"    params: {json.dumps(job['params'])}")
        lines.append("    retry: {max_attempts: 2, initial_delay_seconds: 1, max_delay_seconds: 1}")
        lines += [f"    {key}: {json.dumps(job[key])}" for key in PASSED if key in job]
    return "\n".join(lines) + "\n"


def write_project(
    root: Path, jobs: dict[str, dict[str, Any]], *, notify: list[dict[str, Any]] | None = None
) -> Path:
    (root / "sql").mkdir(parents=True, exist_ok=True)
    for name, job in jobs.items():
        if "template" in job:
            (root / "sql" / f"{name}.sql").write_text(job["template"])
    path = root / "jobs.yaml"
    path.write_text(manifest_yaml(jobs, notify=notify))
    return path


@dataclass
class Service:
    """A service process to start, kill and start again, on one simulated clock."""

    manifest: Path
    dsn: str
    clock: SimClock
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    wrapper: list[str] = field(default_factory=list)  # e.g. ["faketime", "-f", "+5m"]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, **options: Any) -> subprocess.Popen[str]:
        spec = {
            "manifest": str(self.manifest),
            "start": self.clock.start.isoformat(),
            "speed": self.clock.speed,
            "start_file": str(self.clock._file),
            "options": {**self.options, **options},
        }
        spec_file = self.manifest.with_name(f"spec-{len(self.procs)}.json")
        spec_file.write_text(json.dumps(spec))
        env = {**os.environ, "DATABASE_URL": self.dsn, "PYTHONPATH": str(ROOT), **self.env}
        proc = subprocess.Popen(
            [
                *self.wrapper,
                sys.executable,
                "-m",
                "tests.integration.service_support",
                str(spec_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            raise AssertionError(f"the service did not start: {line}{proc.communicate()[1]}")
        return proc

    def stop_all(self) -> list[tuple[int, str]]:
        out = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=30)
            out.append((proc.returncode, err))
        return out


@contextmanager
def running(service: Service) -> Iterator[Service]:
    try:
        yield service
    finally:
        for proc in service.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)


def wait_until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def prepare(dsn: str) -> None:
    """The probe jobs' tables (SETUP_SQL) in the database at ``dsn``."""
    from engine.adapters.pg import Database
    from tests.fixtures.aio import run

    async def go() -> None:
        async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
            await tx.script(SETUP_SQL)

    run(go())


def applied(dsn: str, job: str) -> list[datetime]:
    """The slots ``job`` was applied for, in commit order (a slot applied twice twice)."""
    from tests.fixtures.aio import run
    from tests.integration.localqueue_support import query

    rows = run(query(dsn, "SELECT slot FROM probe.applied WHERE job = $1 ORDER BY at", job))
    return [r["slot"] for r in rows]


def minutes_between(first: datetime, last: datetime) -> list[datetime]:
    """Every minute from ``first`` to ``last``, both included."""
    out, t = [], first
    while t <= last:
        out.append(t)
        t += timedelta(minutes=1)
    return out


def libfaketime() -> str | None:
    """libfaketime's multithreaded library (Debian's faketime), to preload directly: the
    `faketime` wrapper would not pass a SIGTERM on to the process."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


def cronwright(
    manifest: Path, dsn: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The real command line, ``python -m engine -m MANIFEST ARGS...``, as a process with
    DATABASE_URL (and ``env``) set; its stdout and stderr are piped."""
    environ = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "-m", str(manifest), *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def main(spec_path: str) -> None:
    from engine.app.service import Options, run
    from engine.manifest import load
    from engine.runtime.metrics import Collect

    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    clock = SimClock(datetime.fromisoformat(spec["start"]), spec["speed"], Path(spec["start_file"]))
    options = Options(transport="postgres", **spec["options"])

    def started(_: int | None) -> None:
        print("ready", flush=True)

    tally = asyncio.run(
        run(
            load(spec["manifest"]),
            options,
            clock=clock,
            sleep=clock.sleep,
            metrics=Collect(),
            started=started,
        )
    )
    print(tally.summary(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
