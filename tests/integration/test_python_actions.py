"""Python actions through the executor on a real Postgres: the function gets its run, what
it writes commits with the ledger row or not at all, its return value is the ledger's
rows, and each way it can fail is a retry or a dead letter with its reason. The oracle is
``probe.calls``, which the functions append to in the job's transaction."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.manifests import probe_manifest
from engine.adapters.pg import Database
from engine.core.model import Job
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run
from tests.integration.executor_support import (
    SETUP_SQL,
    SLOT,
    FakeClock,
    Harness,
    RecordingSleep,
    backend_sleeping,
    body,
)
from tests.integration.pyaction_support import CALLS_SQL, Project, project, python_job

pytestmark = pytest.mark.postgres

HOUR = timedelta(hours=1)


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    with project(tmp_path) as p:
        yield p


@asynccontextmanager
async def harness(dsn: str, proj: Project, *jobs: Job) -> AsyncIterator[Harness]:
    async with Database.open(dsn, max_size=4) as db:
        async with db.transaction() as tx:
            await tx.script(SETUP_SQL + CALLS_SQL)
        clock, sleep, metrics = FakeClock(), RecordingSleep(), Collect()
        executor = Executor(
            db=db,
            manifest=probe_manifest(*jobs, path=proj.manifest),
            templates={},
            actions={},
            dead_letters=PgDeadLetters(db),
            metrics=metrics,
            clock=clock,
            sleep=sleep,
            rng=random.Random(0),
        )
        yield Harness(db=db, executor=executor, metrics=metrics, clock=clock, sleep=sleep)


async def calls(h: Harness) -> list[dict[str, Any]]:
    rows = await h.query(
        "SELECT job, slot, window_start, window_end, rerun, params FROM probe.calls ORDER BY at"
    )
    return [{**r, "params": json.loads(r["params"])} for r in rows]


def test_the_function_gets_its_run_and_its_writes_commit_with_the_ledger_row(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("record"), params={"value": "v", "rows": 7})

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.rows) == ("succeeded", 7)
            assert await calls(h) == [
                {
                    "job": "sync",
                    "slot": SLOT,
                    "window_start": SLOT - HOUR,
                    "window_end": SLOT,
                    "rerun": False,
                    "params": {"value": "v", "rows": 7},
                }
            ]
            ledger = await h.ledger()
            assert [(r["status"], r["rows"], r["attempt"]) for r in ledger] == [("succeeded", 7, 1)]

    run(main())


def test_a_function_that_returns_none_touched_zero_rows(pg_dsn: str, proj: Project) -> None:
    job = python_job("sync", proj.target("record"))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.rows) == ("succeeded", 0)
            assert [r["rows"] for r in await h.ledger()] == [0]

    run(main())


def test_a_job_without_a_window_sees_window_start_and_window_end_none(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("record"), window=False)

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert outcome.status == "succeeded"
            [call] = await calls(h)
            assert (call["slot"], call["window_start"], call["window_end"]) == (SLOT, None, None)

    run(main())


def test_a_redelivery_of_a_slot_that_succeeded_is_a_duplicate_and_calls_nothing(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("record"))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            first = await h.executor.handle(body(job), message_id="m", attempt=1)
            again = await h.executor.handle(body(job), message_id="m", attempt=2)
            assert (first.status, again.status) == ("succeeded", "duplicate")
            assert len(await calls(h)) == 1
            assert [r["status"] for r in await h.ledger()] == ["succeeded"]

    run(main())


def test_a_rerun_sees_rerun_true_and_a_scheduled_run_false(pg_dsn: str, proj: Project) -> None:
    job = python_job("sync", proj.target("record"))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            first = await h.executor.run_until_done(job, SLOT)
            rerun = await h.executor.run_until_done(job, SLOT, rerun=True)
            assert (first.status, rerun.status) == ("succeeded", "succeeded")
            assert [c["rerun"] for c in await calls(h)] == [False, True]

    run(main())


def test_the_module_is_imported_once_the_first_time_a_slot_of_the_job_runs(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("record"))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            assert proj.imports() == 0  # building the executor imports nothing
            for i in range(3):
                outcome = await h.executor.handle(
                    body(job, SLOT - i * HOUR), message_id=f"m{i}", attempt=1
                )
                assert outcome.status == "succeeded"
            assert proj.imports() == 1
            assert len(await calls(h)) == 3

    run(main())


def test_a_raised_exception_dead_letters_with_its_class_and_message_and_writes_nothing(
    pg_dsn: str, proj: Project, caplog: pytest.LogCaptureFixture
) -> None:
    job = python_job("sync", proj.target("boom"))
    caplog.set_level(logging.WARNING, logger="engine.runtime.pyaction")

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                "ValueError",
                "permanent error: the CRM refused the export",
            )
            assert await calls(h) == []
            [letter] = await h.dead_letters()
            assert (letter["error_class"], letter["reason"], letter["attempts"]) == (
                "ValueError",
                "permanent error: the CRM refused the export",
                1,
            )
            assert [(r["status"], r["error_class"]) for r in await h.ledger()] == [
                ("dead_lettered", "ValueError")
            ]

    run(main())
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == (
        "WARNING",
        f"job sync at 2026-10-31T10:00:00Z: {proj.module}:boom raised",
    )
    # with its traceback (the scrubbing filter may have turned exc_info into exc_text)
    assert "Traceback" in caplog.text and "ValueError: the CRM refused the export" in caplog.text


def test_a_connection_lost_inside_the_function_is_retried_and_the_retry_applies_once(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("record"), params={"sleep": 0.5})

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            delivery = asyncio.create_task(h.executor.handle(body(job), message_id="m", attempt=1))
            pid = await backend_sleeping(h.db)
            await h.query("SELECT pg_terminate_backend($1)", pid)
            first = await delivery
            assert (first.status, first.error_class) in {
                ("retry", "admin_shutdown"),
                ("retry", "connection_exception"),
            }
            assert await calls(h) == []
            second = await h.executor.handle(body(job), message_id="m", attempt=2)
            assert second.status == "succeeded"
            assert len(await calls(h)) == 1

    run(main())


@pytest.mark.parametrize(
    ("function", "status", "error_class", "reason"),
    [
        # Its own OSError is no lost database connection: permanent, like any exception.
        (
            "reads_a_missing_file",
            "dead_lettered",
            "FileNotFoundError",
            "permanent error: [Errno 2] No such file or directory:"
            " '/nonexistent/cronwright/export.csv'",
        ),
        ("times_out", "retry", "TimeoutError", "TimeoutError"),
    ],
    ids=["an-os-error", "a-timeout"],
)
def test_the_functions_own_errors_are_not_taken_for_the_databases(
    pg_dsn: str, proj: Project, function: str, status: str, error_class: str, reason: str
) -> None:
    job = python_job("sync", proj.target(function))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                status,
                error_class,
                reason,
            )
            assert await calls(h) == []

    run(main())


def test_a_serialization_failure_inside_the_function_is_retried_and_then_succeeds(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("conflicted"))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            first = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (first.status, first.error_class, first.reason) == (
                "retry",
                "serialization_failure",
                "serialization_failure (40001): simulated conflict",
            )
            assert await calls(h) == []  # the failed attempt's append rolled back
            second = await h.executor.handle(body(job), message_id="m", attempt=2)
            assert (second.status, second.rows) == ("succeeded", 1)
            assert len(await calls(h)) == 1

    run(main())


def test_retry_later_is_retried_by_the_jobs_policy_then_dead_lettered_with_its_message(
    pg_dsn: str, proj: Project
) -> None:
    job = python_job("sync", proj.target("busy"), max_attempts=2)

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.run_until_done(job, SLOT)
            assert (outcome.status, outcome.attempt, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                2,
                "retry_later",
                "gave up after 2 of 2 attempts: the CRM answered 503",
            )
            assert len(h.sleep.delays) == 1  # one retry, by the job's policy
            assert await calls(h) == []

    run(main())


DEADLINE = (
    "deadline_exceeded",
    "gave up after 1 of 1 attempts: the run exceeded its deadline of 1 s"
    " (timeout_seconds bounds the lock wait, every statement and the action)",
)
STATEMENT_TIMEOUT = (
    "statement_timeout",
    "gave up after 1 of 1 attempts: statement_timeout (57014): canceling statement"
    " due to statement timeout",
)


@pytest.mark.parametrize(
    ("function", "ends"),
    [
        ("stuck", [DEADLINE]),
        # The server's statement_timeout and the client's bound end at the same instant.
        ("stuck_in_postgres", [DEADLINE, STATEMENT_TIMEOUT]),
    ],
    ids=["awaiting-python", "waiting-on-postgres"],
)
def test_the_function_is_bounded_by_timeout_seconds_and_what_it_wrote_rolls_back(
    pg_dsn: str, proj: Project, function: str, ends: list[tuple[str, str]]
) -> None:
    job = python_job("sync", proj.target(function), timeout_seconds=1, max_attempts=1)

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert outcome.status == "dead_lettered"
            assert (outcome.error_class, outcome.reason) in ends
            assert outcome.duration_ms is not None and outcome.duration_ms < 5000
            assert await calls(h) == []

    run(main())


@pytest.mark.parametrize(
    ("function", "error_class", "reason"),
    [
        (
            "says_done",
            "python_action_result",
            "permanent error: {module}:says_done returned 'done' (a str); return the number"
            " of rows it touched (an int from 0), or None",
        ),
        (
            "commits",
            "transaction_ended",
            "permanent error: the job's transaction was ended inside the action (a COMMIT or"
            " ROLLBACK on its connection), so its ledger row cannot commit with its effect;"
            " leave the transaction to cronwright: what the action writes commits with the run",
        ),
        (
            "opens_a_transaction",
            "interface_error",
            "permanent error: interface_error: cannot use Connection.transaction() in a"
            " manually started transaction",
        ),
        (
            "edits_params",
            "TypeError",
            "permanent error: 'mappingproxy' object does not support item assignment",
        ),
        (
            "missing",
            "python_action_invalid",
            "permanent error: {module} ({module}.py) has no attribute 'missing'; define async"
            " def missing(run) in {module}.py, or fix the name",
        ),
    ],
    ids=[
        "returns-a-string",
        "commits-on-its-connection",
        "opens-a-transaction",
        "edits-its-params",
        "not-defined",
    ],
)
def test_a_function_that_breaks_the_contract_dead_letters_saying_what_to_fix(
    pg_dsn: str, proj: Project, function: str, error_class: str, reason: str
) -> None:
    job = python_job("sync", proj.target(function))

    async def main() -> None:
        async with harness(pg_dsn, proj, job) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                error_class,
                reason.format(module=proj.module),
            )
            assert [r["status"] for r in await h.ledger()] == ["dead_lettered"]

    run(main())


def test_a_module_that_fails_to_import_dead_letters_its_slots_and_the_worker_goes_on(
    pg_dsn: str, proj: Project
) -> None:
    broken = proj.another("broken", "raise RuntimeError('CRM_TOKEN is not set')\n")
    bad_job = python_job("bad", f"{broken}:sync")
    good_job = python_job("good", proj.target("record"))

    async def main() -> None:
        async with harness(pg_dsn, proj, bad_job, good_job) as h:
            for i in (1, 2):  # never imported: each slot says why
                bad = await h.executor.handle(
                    body(bad_job, SLOT - i * HOUR), message_id=f"b{i}", attempt=1
                )
                assert (bad.status, bad.error_class, bad.reason) == (
                    "dead_lettered",
                    "python_action_invalid",
                    f"permanent error: importing {broken} failed: RuntimeError: CRM_TOKEN is"
                    f" not set; fix the module or what it imports; `python -c 'import {broken}'`"
                    f" in {proj.root.resolve()} shows the traceback",
                )
            ok = await h.executor.handle(body(good_job), message_id="g", attempt=1)
            assert ok.status == "succeeded"

    run(main())
