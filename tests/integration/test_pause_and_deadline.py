"""Runtime pauses and the whole-run deadline, through the executor every transport uses
(and through the Cloudflare pull consumer against the local Queues API)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from engine.adapters.pg import Database
from engine.core.model import Overlap, RetryPolicy
from engine.runtime import ledger, pauses
from tests.fixtures.aio import run
from tests.fixtures.cfqueues_api import CfQueuesApi, serve
from tests.integration.executor_support import EFFECT_SQL, SLOT, body, harness, make_job
from tests.integration.ledger_support import ROLLUP_SQL, history, setup

pytestmark = pytest.mark.postgres

HOUR = timedelta(hours=1)


async def pause(db: Database, job: str, at: object, reason: str | None = None) -> None:
    async with db.transaction() as tx:
        await pauses.pause(tx, job, at, reason)  # type: ignore[arg-type]


async def resume(db: Database, job: str, at: object) -> None:
    async with db.transaction() as tx:
        await pauses.resume(tx, job, at)  # type: ignore[arg-type]


def test_messages_of_a_paused_job_are_recorded_paused_and_never_run(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            await pause(h.db, job.name, SLOT - HOUR, "maintenance")
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.slot) == ("paused", SLOT)
            again = await h.executor.run_until_done(job, SLOT)  # in-process runs too
            assert again.status == "paused"
            assert await h.counter() == 0
            assert [(r["status"], r["message_id"]) for r in await h.ledger()] == [
                ("paused", "local")
            ]
            assert [(r["status"], r["current"]) for r in await history(h)] == [
                ("paused", False),
                ("paused", True),
            ]
            assert [m.status for m in h.metrics.records] == ["paused", "paused"]

            # Resumed: a slot that fell inside the pause is never caught up; later ones run.
            h.clock.now = SLOT + 2 * HOUR
            await resume(h.db, job.name, SLOT + HOUR + timedelta(minutes=30))
            still = await h.executor.handle(body(job), message_id="m2", attempt=1)
            assert still.status == "paused"
            inside = await h.executor.handle(body(job, SLOT + HOUR), message_id="m3", attempt=1)
            assert inside.status == "paused"
            after = await h.executor.handle(body(job, SLOT + 2 * HOUR), message_id="m4", attempt=1)
            assert after.status == "succeeded"
            assert await h.counter() == 1

    run(main())


def test_a_pause_never_overwrites_a_slot_that_already_succeeded(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            assert (await h.executor.run_until_done(job, SLOT)).status == "succeeded"
            await pause(h.db, job.name, SLOT - HOUR)
            assert (await h.executor.handle(body(job), message_id="m", attempt=1)).status == (
                "duplicate"
            )
            rerun = await h.executor.run_until_done(job, SLOT, rerun="r1")
            assert rerun.status == "duplicate"
            assert [r["status"] for r in await h.ledger()] == ["succeeded"]
            assert await h.counter() == 1

    run(main())


def test_a_paused_slot_does_not_wait_for_the_jobs_lock(pg_dsn: str) -> None:
    job = make_job(timeout_seconds=30)

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            await pause(h.db, job.name, SLOT - HOUR)
            async with h.db.transaction() as holder:
                await holder.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    ledger.lock_key(job.name),
                )
                outcome = await asyncio.wait_for(
                    h.executor.handle(body(job), message_id="m", attempt=1), 5
                )
            assert outcome.status == "paused"

    run(main())


@pytest.fixture
def api() -> Iterator[CfQueuesApi]:
    with serve() as api:
        api.create_queue("probe-jobs")
        api.create_queue("probe-jobs-dlq")
        yield api


def test_the_pull_consumer_acks_a_paused_jobs_messages_without_running_them(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    from tests.integration.test_consumer import rig

    job = make_job()
    api.send("probe-jobs", json.loads(body(job)))
    api.send("probe-jobs", json.loads(body(job, SLOT - HOUR)))

    async def main() -> None:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            await pause(r.db, job.name, SLOT - 2 * HOUR, "incident")
            tally = await r.consumer.run(max_batches=1)
            assert (dict(tally.statuses), tally.ok) == ({"paused": 2}, True)
            assert await r.rows("SELECT n FROM probe.counter") == [{"n": 0}]
            assert await r.rows("SELECT status FROM cronwright.runs") == [
                {"status": "paused"},
                {"status": "paused"},
            ]

    run(main())
    assert api.queue("probe-jobs").messages == []
    calls = [c.json for c in api.calls("/messages/ack")]
    # Acked as each outcome is known, so one call or two; never handed back.
    assert sum(len(c["acks"]) for c in calls) == 2
    assert [r for c in calls for r in c["retries"]] == []


def test_a_job_whose_statements_together_exceed_its_timeout_is_stopped_at_the_deadline_and_retried(
    pg_dsn: str,
) -> None:
    # Each statement alone is well inside timeout_seconds; together they are not.
    job = make_job(timeout_seconds=1, retry=RetryPolicy(max_attempts=3, initial_delay_seconds=1))
    sql = "SELECT pg_sleep(seconds) FROM probe.sleeps;\n" * 3 + ROLLUP_SQL

    async def main() -> None:
        async with harness(pg_dsn, [(job, sql)]) as h:
            await setup(h)
            await h.query("UPDATE probe.sleeps SET seconds = 0.7 RETURNING seconds")
            t0 = time.monotonic()
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            elapsed = time.monotonic() - t0
            assert (outcome.status, outcome.error_class) == ("retry", "statement_timeout")
            assert outcome.delay_seconds is not None
            # Stopped in the second statement, at the deadline: not after all of them
            # (4 x 0.7 s), nor one statement timeout per statement.
            assert 1.0 <= elapsed < 2.0
            assert await h.counter() == 0
            assert [(r["status"], r["error_class"]) for r in await h.ledger()] == [
                ("failed", "statement_timeout")
            ]
            await h.query("UPDATE probe.sleeps SET seconds = 0.1 RETURNING seconds")
            retried = await h.executor.handle(body(job), message_id="m", attempt=2)
            assert retried.status == "succeeded"
            assert await h.counter() == 1

    run(main())


def test_the_lock_wait_counts_against_the_deadline(pg_dsn: str) -> None:
    """A run that waited for the job's lock has only the rest of its deadline for the SQL."""
    job = make_job(timeout_seconds=1, overlap=Overlap.FORBID)
    sql = "SELECT pg_sleep(0.6);\n" + EFFECT_SQL

    async def main() -> None:
        async with harness(pg_dsn, [(job, sql)]) as h:

            async def hold_lock() -> None:
                async with h.db.transaction() as tx:
                    await tx.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                        ledger.lock_key(job.name),
                    )
                    await asyncio.sleep(0.6)

            holder = asyncio.create_task(hold_lock())
            await asyncio.sleep(0.1)
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            await holder
            # 0.5 s of lock wait + 0.6 s of statement > 1 s: stopped in the statement.
            assert (outcome.status, outcome.error_class) == ("retry", "statement_timeout")
            assert await h.counter() == 0

    run(main())


def test_a_lock_held_past_the_deadline_fails_the_run_at_the_deadline(pg_dsn: str) -> None:
    job = make_job(timeout_seconds=1)

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h, h.db.transaction() as holder:
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ledger.lock_key(job.name)
            )
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class) == ("retry", "lock_not_available")

    run(main())


def test_an_action_that_outlasts_the_deadline_is_stopped_and_retried(pg_dsn: str) -> None:
    job = make_job(timeout_seconds=1, action="slow")
    calls: list[float] = []

    async def slow(rows: object, slot: object) -> int:
        calls.append(time.monotonic())
        await asyncio.sleep(5)
        return 0

    async def main() -> None:
        async with harness(pg_dsn, [(job, "SELECT 1 AS x;\n")], actions={"slow": slow}) as h:
            t0 = time.monotonic()
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert time.monotonic() - t0 < 3
            assert (outcome.status, outcome.error_class) == ("retry", "deadline_exceeded")
            assert outcome.reason == (
                "the run exceeded its deadline of 1 s (timeout_seconds bounds the lock wait,"
                " every statement and the action)"
            )
            assert len(calls) == 1

    run(main())
