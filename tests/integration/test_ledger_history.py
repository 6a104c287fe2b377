"""Run history and reruns on a real Postgres: every attempt is kept, one is current, and a
rerun recomputes a succeeded slot from the source once per rerun request."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.core.model import Overlap, RetryPolicy
from engine.runtime import ledger
from tests.fixtures.aio import run
from tests.integration.executor_support import SLOT, body, harness, make_job
from tests.integration.ledger_support import (
    ROLLUP_SQL,
    add_source,
    history,
    oracle,
    rerun_body,
    rollup,
    setup,
)

pytestmark = pytest.mark.postgres

WINDOW = SLOT - timedelta(hours=1)  # the probe job's window start at SLOT


def test_rerun_recomputes_a_changed_source_and_its_replay_changes_nothing(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, ROLLUP_SQL)]) as h:
            await setup(h)
            source = [(WINDOW, 5), (WINDOW, 7)]
            await add_source(h, source)
            first = await h.executor.handle(body(job), message_id="m1", attempt=1)
            assert first.status == "succeeded"
            assert await rollup(h) == oracle(source)

            late = [(WINDOW, 100)]  # arrives after the slot ran
            await add_source(h, late)
            again = await h.executor.handle(body(job), message_id="m2", attempt=1)
            assert again.status == "duplicate"
            assert await rollup(h) == oracle(source)  # a plain replay recomputes nothing

            rerun = await h.executor.run_until_done(job, SLOT, rerun="r1")
            assert (rerun.status, rerun.slot) == ("succeeded", SLOT)
            assert await rollup(h) == oracle(source + late)

            replayed = await h.executor.handle(
                rerun_body(job.type, SLOT, "r1"), message_id="m3", attempt=1
            )
            assert replayed.status == "duplicate"
            assert await rollup(h) == oracle(source + late)
            assert await h.counter() == 2
            assert await h.query("SELECT rerun FROM probe.modes ORDER BY ctid") == [
                {"rerun": False},
                {"rerun": True},
            ]
            assert [(r["status"], r["rerun_id"], r["current"]) for r in await history(h)] == [
                ("succeeded", None, False),
                ("succeeded", "r1", True),
            ]
            assert [(r["status"], r["attempt"]) for r in await h.ledger()] == [("succeeded", 1)]

    run(main())


def test_every_attempt_is_kept_and_the_last_success_is_current(pg_dsn: str) -> None:
    job = make_job(retry=RetryPolicy(max_attempts=3, initial_delay_seconds=1))
    sql = "SELECT probe.flaky(2);\n" + ROLLUP_SQL

    async def main() -> None:
        async with harness(pg_dsn, [(job, sql)]) as h:
            await setup(h)
            outcome = await h.executor.run_until_done(job, SLOT)
            assert (outcome.status, outcome.attempt) == ("succeeded", 3)
            assert [
                (r["status"], r["attempt"], r["error_class"], r["current"])
                for r in await history(h)
            ] == [
                ("failed", 1, "serialization_failure", False),
                ("failed", 2, "serialization_failure", False),
                ("succeeded", 3, None, True),
            ]
            listed = await ledger.runs(h.db, history=True)
            assert [(r["status"], r["attempt"], r["current"]) for r in listed] == [
                ("succeeded", 3, True),
                ("failed", 2, False),
                ("failed", 1, False),
            ]

    run(main())


def test_a_failed_rerun_leaves_the_earlier_success_current(pg_dsn: str) -> None:
    job = make_job(retry=RetryPolicy(max_attempts=1))

    async def main() -> None:
        async with harness(pg_dsn, [(job, ROLLUP_SQL)]) as h:
            await setup(h)
            source = [(WINDOW, 3)]
            await add_source(h, source)
            assert (await h.executor.run_until_done(job, SLOT)).status == "succeeded"
            await h.query("INSERT INTO probe.broken VALUES ('disk') RETURNING why")
            await add_source(h, [(WINDOW, 4)])
            failed = await h.executor.run_until_done(job, SLOT, rerun="r1")
            assert (failed.status, failed.error_class) == ("dead_lettered", "data_exception")
            assert await rollup(h) == oracle(source)  # the earlier effect stands
            assert [(r["status"], r["rerun_id"], r["current"]) for r in await history(h)] == [
                ("succeeded", None, True),
                ("dead_lettered", "r1", False),
            ]
            assert [r["status"] for r in await h.ledger()] == ["succeeded"]

    run(main())


@pytest.mark.parametrize("overlap", [Overlap.FORBID, Overlap.ALLOW])
def test_two_concurrent_reruns_of_one_request_run_it_once(pg_dsn: str, overlap: Overlap) -> None:
    """The second delivery of the same rerun request waits on the first (the job's lock, or
    the slot's row), then finds the request done: a duplicate."""
    job = make_job(overlap=overlap)

    async def main() -> None:
        async with harness(pg_dsn, [(job, ROLLUP_SQL)]) as h:
            await setup(h)
            source = [(WINDOW, 1), (WINDOW, 2)]
            await add_source(h, source)
            await h.executor.run_until_done(job, SLOT)
            late = [(WINDOW, 40)]
            await add_source(h, late)
            await h.query("UPDATE probe.sleeps SET seconds = 0.5 RETURNING seconds")
            outcomes = await asyncio.gather(
                *(
                    h.executor.handle(rerun_body(job.type, SLOT, "r1"), message_id=m, attempt=1)
                    for m in ("a", "b")
                )
            )
            assert sorted(o.status for o in outcomes) == ["duplicate", "succeeded"]
            assert await rollup(h) == oracle(source + late)
            assert await h.counter() == 2  # the first run and ONE rerun

    run(main())


def test_two_concurrent_rerun_requests_serialise_and_leave_the_result_of_one(
    pg_dsn: str,
) -> None:
    """Two different rerun requests (two `run --rerun` invocations) each recompute, one
    after the other; both recompute the same source, so the table is as after one."""
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, ROLLUP_SQL)]) as h:
            await setup(h)
            source = [(WINDOW, 8)]
            await add_source(h, source)
            await h.executor.run_until_done(job, SLOT)
            late = [(WINDOW, 9), (WINDOW, 10)]
            await add_source(h, late)
            await h.query("UPDATE probe.sleeps SET seconds = 0.3 RETURNING seconds")
            outcomes = await asyncio.gather(
                h.executor.run_until_done(job, SLOT, rerun="r1"),
                h.executor.run_until_done(job, SLOT, rerun="r2"),
            )
            assert [o.status for o in outcomes] == ["succeeded", "succeeded"]
            assert await rollup(h) == oracle(source + late)
            current = [r for r in await history(h) if r["current"]]
            assert len(current) == 1 and current[0]["rerun_id"] in ("r1", "r2")
            assert len(await history(h)) == 3

    run(main())


def test_rerun_true_is_a_new_request_each_time(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, ROLLUP_SQL)]) as h:
            await setup(h)
            assert (await h.executor.run_until_done(job, SLOT)).status == "succeeded"
            assert (await h.executor.run_until_done(job, SLOT, rerun=True)).status == "succeeded"
            assert (await h.executor.run_until_done(job, SLOT, rerun=True)).status == "succeeded"
            assert (await h.executor.run_until_done(job, SLOT, rerun=False)).status == "duplicate"
            ids = [r["rerun_id"] for r in await history(h)]
            assert ids[0] is None and len(set(ids[1:])) == 2
            assert all(i.startswith("rerun-") for i in ids[1:])
            assert await h.counter() == 3

    run(main())
