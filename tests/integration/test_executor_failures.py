"""Failures on a real Postgres: what retries, what dead-letters, and that nothing is dropped."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.core.errors import DatabaseError
from engine.core.model import RetryPolicy
from engine.runtime.deadletters import DeadLetter
from tests.fixtures.aio import run
from tests.integration.executor_support import (
    EFFECT_SQL,
    SLOT,
    backend_sleeping,
    body,
    harness,
    make_job,
)

pytestmark = pytest.mark.postgres

SLEEPY_SQL = EFFECT_SQL + "SELECT pg_sleep({{ params.sleep }});\n"


def test_connection_killed_mid_job_is_retried_and_the_result_is_correct(pg_dsn: str) -> None:
    job = make_job(params={"value": "v", "sleep": 0.5})
    killed: list[bool] = []

    async def main() -> None:
        async with harness(pg_dsn, [(job, SLEEPY_SQL)]) as h:
            delivery = asyncio.create_task(h.executor.handle(body(job), message_id="m", attempt=1))
            pid = await backend_sleeping(h.db)
            rows = await h.query("SELECT pg_terminate_backend($1) AS killed", pid)
            killed.append(rows[0]["killed"])
            first = await delivery
            assert (first.status, first.error_class) in {
                ("retry", "admin_shutdown"),
                ("retry", "connection_exception"),
            }
            assert first.delay_seconds is not None and 0 <= first.delay_seconds <= 1
            assert await h.counter() == 0
            assert [(r["status"], r["attempt"]) for r in await h.ledger()] == [("failed", 1)]

            second = await h.executor.handle(body(job), message_id="m", attempt=2)
            assert (second.status, second.rows) == ("succeeded", 3)
            assert await h.counter() == 1
            assert await h.query("SELECT value FROM probe.effects") == [{"value": "v"}]
            assert [(r["status"], r["attempt"], r["error"]) for r in await h.ledger()] == [
                ("succeeded", 2, None)
            ]

    run(main())
    assert killed == [True]


def test_statement_timeout_is_transient_and_retried(pg_dsn: str) -> None:
    job = make_job(timeout_seconds=1, params={"value": "v", "sleep": 3})

    async def main() -> None:
        async with harness(pg_dsn, [(job, SLEEPY_SQL)]) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class) == ("retry", "statement_timeout")
            assert outcome.reason == (
                "statement_timeout (57014): canceling statement due to statement timeout"
            )
            assert await h.counter() == 0
            assert [(r["status"], r["error_class"]) for r in await h.ledger()] == [
                ("failed", "statement_timeout")
            ]

    run(main())


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        (
            "SELECT * FROM probe.missing;\n",
            'undefined_table (42P01): relation "probe.missing" does not exist',
        ),
        (
            "SELECT nope FROM probe.counter;\n",
            'undefined_column (42703): column "nope" does not exist',
        ),
    ],
)
def test_a_missing_table_or_column_dead_letters_with_a_hint_to_migrate(
    pg_dsn: str, sql: str, error: str
) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, sql)]) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            reason = (
                f"permanent error: {error}; if the schema is behind the project, "
                "run `cronwright db migrate`"
            )
            assert (outcome.status, outcome.reason) == ("dead_lettered", reason)
            assert [d["reason"] for d in await h.dead_letters()] == [reason]

    run(main())


def test_syntax_error_dead_letters_at_once(pg_dsn: str) -> None:
    job = make_job(retry=RetryPolicy(max_attempts=10))

    async def main() -> None:
        async with harness(pg_dsn, [(job, "SELEC 1;\n")]) as h:
            outcome = await h.executor.handle(body(job), message_id="m-9", attempt=1)
            reason = 'permanent error: syntax_error (42601): syntax error at or near "SELEC"'
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                "syntax_error",
                reason,
            )
            assert await h.dead_letters() == [
                {
                    "job": "probe",
                    "type": "test.probe",
                    "slot": SLOT,
                    "message_id": "m-9",
                    "body": body(job),
                    "reason": reason,
                    "error_class": "syntax_error",
                    "attempts": 1,
                }
            ]
            assert [(r["status"], r["attempt"]) for r in await h.ledger()] == [("dead_lettered", 1)]
            assert h.metrics.records[-1].status == "dead_lettered"

    run(main())


def test_missing_table_dead_letters_at_once(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, "DELETE FROM probe.nowhere;\n")]) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class) == ("dead_lettered", "undefined_table")

    run(main())


FLAKY_SQL = "SELECT probe.flaky({{ params.failures }});\n" + EFFECT_SQL


def test_transient_error_on_the_last_attempt_dead_letters_with_the_attempt_count(
    pg_dsn: str,
) -> None:
    job = make_job(params={"value": "v", "failures": 99})

    async def main() -> None:
        async with harness(pg_dsn, [(job, FLAKY_SQL)]) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=3)
            assert (outcome.status, outcome.reason) == (
                "dead_lettered",
                "gave up after 3 of 3 attempts: serialization_failure (40001): simulated conflict",
            )
            letters = await h.dead_letters()
            assert [(d["attempts"], d["error_class"]) for d in letters] == [
                (3, "serialization_failure")
            ]

    run(main())


def test_a_transient_error_of_a_slot_older_than_its_next_slot_still_gets_every_retry(
    pg_dsn: str,
) -> None:
    """A catch-up slot hours old (its next slots long due) fails transiently: it is retried
    by the job's policy like an on-time one, never dead-lettered by the clock alone."""
    job = make_job(
        params={"value": "v", "failures": 4},
        retry=RetryPolicy(
            max_attempts=5, initial_delay_seconds=600, max_delay_seconds=600, jitter=False
        ),
    )

    async def main() -> None:
        async with harness(pg_dsn, [(job, FLAKY_SQL)]) as h:
            h.clock.now = SLOT + timedelta(hours=5, minutes=59, seconds=59)
            outcomes = [
                await h.executor.handle(body(job), message_id="m", attempt=a) for a in range(1, 6)
            ]
            assert [(o.status, o.delay_seconds) for o in outcomes] == [
                ("retry", 600.0),
                ("retry", 600.0),
                ("retry", 600.0),
                ("retry", 600.0),
                ("succeeded", None),
            ]
            assert await h.query("SELECT count(*) AS n FROM cronwright.dead_letters") == [{"n": 0}]

    run(main())


def test_run_until_done_retries_in_process_with_the_injected_sleep(pg_dsn: str) -> None:
    job = make_job(params={"value": "v", "failures": 2})

    async def main() -> None:
        async with harness(pg_dsn, [(job, FLAKY_SQL)]) as h:
            outcome = await h.executor.run_until_done(job, SLOT)
            assert (outcome.status, outcome.attempt) == ("succeeded", 3)
            assert len(h.sleep.delays) == 2
            assert 0 <= h.sleep.delays[0] <= 1 and 0 <= h.sleep.delays[1] <= 2
            assert [r.status for r in h.metrics.records] == ["retry", "retry", "succeeded"]
            assert await h.counter() == 1

    run(main())


POISON = [
    ("not json", None, "message body is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ('{"scheduledFor": "2026-10-31T10:00:00Z"}', None, "message has no 'type'"),
    (
        '{"type": "test.nope"}',
        "test.nope",
        "unknown message type 'test.nope'; did you mean 'test.probe'?",
    ),
    (
        '{"type": "test.probe", "scheduledFor": "2026-10-31T10:15:00Z"}',
        "test.probe",
        "'scheduledFor' 2026-10-31T10:15:00Z is not a slot of test.probe (cron '0 * * * *')",
    ),
    (
        '{"type": "test.probe", "scheduledFor": "yesterday"}',
        "test.probe",
        "'scheduledFor' 'yesterday' is not an ISO 8601 UTC time like 2026-10-31T10:00:00Z",
    ),
]


@pytest.mark.parametrize(("raw", "type_", "reason"), POISON)
def test_poison_message_is_dead_lettered_with_its_reason(
    pg_dsn: str, raw: str, type_: str | None, reason: str
) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            outcome = await h.executor.handle(raw.encode(), message_id="p-1", attempt=1)
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                "invalid_message",
                reason,
            )
            assert await h.dead_letters() == [
                {
                    "job": "probe" if type_ == "test.probe" else None,
                    "type": type_,
                    "slot": None,
                    "message_id": "p-1",
                    "body": raw,
                    "reason": reason,
                    "error_class": "invalid_message",
                    "attempts": 1,
                }
            ]
            assert await h.ledger() == []
            assert await h.counter() == 0

    run(main())


class BrokenSink:
    async def put(self, letter: DeadLetter) -> None:
        raise DatabaseError("connection: refused", transient=True, error_class="connection")


def test_dead_letter_that_cannot_be_written_is_redelivered_not_dropped(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)], dead_letters=BrokenSink()) as h:
            outcome = await h.executor.handle("not json", message_id="p", attempt=1)
            assert (outcome.status, outcome.delay_seconds, outcome.error_class) == (
                "retry",
                30.0,
                "connection",
            )

    run(main())


def test_failed_job_whose_dead_letter_cannot_be_written_is_redelivered(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, "SELEC 1;\n")], dead_letters=BrokenSink()) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.delay_seconds) == ("retry", 1.0)
            assert [(r["status"], r["error_class"]) for r in await h.ledger()] == [
                ("failed", "syntax_error")
            ]

    run(main())


class SlowSink:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.letters: list[DeadLetter] = []

    async def put(self, letter: DeadLetter) -> None:
        self.started.set()
        await asyncio.sleep(0.2)
        self.letters.append(letter)


def test_cancellation_during_a_dead_letter_write_lets_the_write_finish(pg_dsn: str) -> None:
    job = make_job()
    sink = SlowSink()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)], dead_letters=sink) as h:
            task = asyncio.create_task(h.executor.handle("not json", message_id="p", attempt=1))
            await asyncio.wait_for(sink.started.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert [letter.message_id for letter in sink.letters] == ["p"]

    run(main())


def test_cancelled_delivery_rolls_back_and_propagates_the_cancellation(pg_dsn: str) -> None:
    job = make_job(params={"value": "v", "sleep": 5})

    async def main() -> None:
        async with harness(pg_dsn, [(job, SLEEPY_SQL)]) as h:
            task = asyncio.create_task(h.executor.handle(body(job), message_id="m", attempt=1))
            await backend_sleeping(h.db)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await h.counter() == 0
            assert await h.ledger() == []
            assert h.metrics.records == []

    run(main())


def test_waiting_for_another_run_of_the_job_is_bounded_by_its_timeout(pg_dsn: str) -> None:
    job = make_job(timeout_seconds=1)

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h, h.db.transaction() as other:
            # Another run of the same job holds the job's lock and does not finish in time.
            await other.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "cronwright:job:probe"
            )
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class) == ("retry", "lock_not_available")
            assert outcome.reason == (
                "lock_not_available (55P03): canceling statement due to lock timeout"
            )

    run(main())
