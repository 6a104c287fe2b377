"""Python actions for the tests: a project folder whose module holds probe functions.

``record`` appends what it was given to ``probe.calls`` on the connection it gets, in the
job's transaction, so an oracle over that table sees every application that committed:
a slot applied twice leaves two rows. The others fail in each way a run can fail.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from engine.core.model import Action, Job, RetryPolicy
from tests.integration.executor_support import make_job

CALLS_SQL = """
CREATE SCHEMA IF NOT EXISTS probe;
CREATE TABLE IF NOT EXISTS probe.calls (
    job text NOT NULL,
    slot timestamptz NOT NULL,
    window_start timestamptz,
    window_end timestamptz,
    rerun boolean NOT NULL,
    params jsonb NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE SEQUENCE IF NOT EXISTS probe.conflicts;
CREATE OR REPLACE FUNCTION probe.conflict(failures integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('probe.conflicts') <= failures THEN
        RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN 1;
END $$;
"""

ACTIONS = """\
import asyncio
import json
from pathlib import Path

from engine import ActionRun, RetryLater

with Path(__file__).with_name("imports.log").open("a") as log:
    log.write("imported\\n")


async def _append(run: ActionRun) -> None:
    await run.connection.execute(
        "INSERT INTO probe.calls (job, slot, window_start, window_end, rerun, params)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        run.job, run.slot, run.window_start, run.window_end, run.rerun,
        json.dumps(dict(run.params)),
    )


async def record(run: ActionRun) -> int | None:
    await _append(run)
    if run.params.get("sleep"):  # a window to be killed in, inside the transaction
        await run.connection.execute("SELECT 'pyaction:sleep', pg_sleep($1)", run.params["sleep"])
    return run.params.get("rows")


async def boom(run: ActionRun) -> int:
    await _append(run)
    raise ValueError("the CRM refused the export")


async def reads_a_missing_file(run: ActionRun) -> int:
    await _append(run)
    return len(Path("/nonexistent/cronwright/export.csv").read_text())


async def times_out(run: ActionRun) -> int:
    await _append(run)
    async with asyncio.timeout(0.01):
        await asyncio.sleep(1)
    return 1


async def conflicted(run: ActionRun) -> int:
    await _append(run)
    await run.connection.fetchval("SELECT probe.conflict(1)")
    return 1


async def busy(run: ActionRun) -> int:
    await _append(run)
    raise RetryLater("the CRM answered 503")


async def stuck(run: ActionRun) -> int:
    await _append(run)
    await asyncio.sleep(30)
    return 1


async def stuck_in_postgres(run: ActionRun) -> int:
    await _append(run)
    await run.connection.execute("SELECT pg_sleep(30)")
    return 1


async def says_done(run: ActionRun) -> str:
    await _append(run)
    return "done"


async def commits(run: ActionRun) -> int:
    await _append(run)
    await run.connection.execute("COMMIT")
    return 1


async def opens_a_transaction(run: ActionRun) -> int:
    async with run.connection.transaction():
        await _append(run)
    return 1


async def edits_params(run: ActionRun) -> int:
    run.params["value"] = "changed"
    return 1
"""


@dataclass(frozen=True)
class Project:
    """A project folder with one module of actions, under a name no other test uses (a
    module stays imported for the process's life)."""

    root: Path
    module: str

    def target(self, function: str) -> str:
        return f"{self.module}:{function}"

    def another(self, suffix: str, source: str) -> str:
        """Write another module beside the first; its name."""
        name = f"{self.module}_{suffix}"
        (self.root / f"{name}.py").write_text(source)
        return name

    @property
    def manifest(self) -> str:
        return str(self.root / "jobs.yaml")

    def imports(self) -> int:
        log = self.root / "imports.log"
        return len(log.read_text().splitlines()) if log.exists() else 0


@contextmanager
def project(root: Path, source: str = ACTIONS) -> Iterator[Project]:
    """Write the module; afterwards forget it and the folder, so the test leaves the
    process's imports as it found them."""
    module = f"actions_{uuid.uuid4().hex[:10]}"
    (root / f"{module}.py").write_text(source)
    path = list(sys.path)
    try:
        yield Project(root=root, module=module)
    finally:
        for name in [m for m in sys.modules if m.startswith(module)]:
            del sys.modules[name]
        sys.path[:] = path


def python_job(
    name: str,
    target: str,
    *,
    window: bool = True,
    params: dict[str, object] | None = None,
    timeout_seconds: int = 30,
    max_attempts: int = 3,
) -> Job:
    """An hourly job whose work is ``target``; with or without the hour before its slot
    as its window."""
    job = make_job(
        name=name,
        timeout_seconds=timeout_seconds,
        params=params if params is not None else {"value": "v"},
        retry=RetryPolicy(max_attempts=max_attempts, initial_delay_seconds=1, max_delay_seconds=1),
    )
    return replace(
        job,
        sql=None,
        action=Action(python=target),
        window=job.window if window else None,
    )
