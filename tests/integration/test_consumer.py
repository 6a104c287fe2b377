"""The HTTP pull consumer on real PostgreSQL against the local stand-in of Cloudflare's
Queues REST API: one ack call per batch, duplicates, poison messages to both dead-letter
stores, retries with the executor's delay, a crash before the ack, SIGTERM, and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.cfqueue import QueuesClient, Settings
from engine.adapters.pg import Database
from engine.app import service
from engine.app.pullconsumer import PullConsumer
from engine.app.tally import Tally
from engine.core.errors import ConfigError
from engine.core.model import Consumer, ConsumerType, Job, RetryPolicy
from engine.runtime.budget import DeliveryBudget
from engine.runtime.deadletters import CopiedDeadLetters, PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from engine.runtime.outcome import Outcome
from tests.fixtures.aio import run
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN, CfQueuesApi, serve
from tests.integration.executor_support import (
    EFFECT_SQL,
    NOW,
    SETUP_SQL,
    SLOT,
    FakeClock,
    RecordingSleep,
    body,
    make_job,
    make_manifest,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
QUEUE, DLQ = "probe-jobs", "probe-jobs-dlq"
FLAKY_SQL = "SELECT probe.flaky(1);\n" + EFFECT_SQL


@pytest.fixture
def api() -> Iterator[CfQueuesApi]:
    with serve() as api:
        api.create_queue(QUEUE)
        api.create_queue(DLQ)
        yield api


@dataclass
class Idle(RecordingSleep):
    """The consumer's idle wait; stops it after ``stop_after`` waits."""

    consumer: PullConsumer | None = None
    stop_after: int | None = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.consumer and self.stop_after and len(self.delays) >= self.stop_after:
            self.consumer.stop()


@dataclass
class Rig:
    db: Database
    api: CfQueuesApi
    consumer: PullConsumer
    idle: Idle
    clock: FakeClock

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        return await self.db.fetch(sql)


@asynccontextmanager
async def rig(
    dsn: str, api: CfQueuesApi, job: Job, sql: str, **consumer: Any
) -> AsyncIterator[Rig]:
    manifest = make_manifest(job)
    async with Database.open(dsn, max_size=8) as db, AsyncExitStack() as stack:
        async with db.transaction() as tx:
            await tx.script(SETUP_SQL)
        client = await stack.enter_async_context(
            QueuesClient(
                Settings(account_id=ACCOUNT, token=TOKEN, base_url=api.url),
                sleep=RecordingSleep(),
            )
        )
        ids = await client.queue_ids([QUEUE, DLQ])
        dead_letters = CopiedDeadLetters(
            PgDeadLetters(db), lambda letter: client.send(ids[DLQ], letter)
        )
        clock = FakeClock()
        executor = Executor(
            db=db,
            manifest=manifest,
            templates={job.template: sql},
            actions={},
            dead_letters=dead_letters,
            metrics=Collect(),
            clock=clock,
            sleep=RecordingSleep(),
            rng=random.Random(0),
        )
        idle = Idle()
        consumer = PullConsumer(
            client=client,
            executor=executor,
            queue_id=ids[QUEUE],
            settings=manifest.queue.consumer,
            budget=DeliveryBudget(db, QUEUE, manifest.consumer_max_retries + 1),
            sleep=idle,
            **consumer,
        )
        idle.consumer = consumer
        yield Rig(db=db, api=api, consumer=consumer, idle=idle, clock=clock)


def open_client(api: CfQueuesApi) -> QueuesClient:
    return QueuesClient(
        Settings(account_id=ACCOUNT, token=TOKEN, base_url=api.url), sleep=RecordingSleep()
    )


def acks(api: CfQueuesApi) -> list[Any]:
    return [r.json for r in api.calls("/messages/ack")]


def test_a_batch_runs_each_message_and_acks_each_once_as_it_finishes(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    job = make_job()
    api.send(QUEUE, json.loads(body(job)))
    api.send(QUEUE, json.loads(body(job)))  # the same slot again: a duplicate
    api.send(QUEUE, "not json {", content_type="text")
    api.send(QUEUE, {"type": "billing.invoice", "scheduledFor": "2026-10-31T10:00:00Z"})

    async def main() -> Tally:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            tally = await r.consumer.run(max_batches=1)
            assert await r.rows("SELECT n FROM probe.counter") == [{"n": 1}]
            assert await r.rows("SELECT job, slot, status, attempt FROM cronwright.runs") == [
                {"job": "probe", "slot": SLOT, "status": "succeeded", "attempt": 1}
            ]
            letters = await r.rows(
                "SELECT type, body, reason, error_class, attempts FROM cronwright.dead_letters"
                " ORDER BY body"  # a batch runs concurrently: no order between its messages
            )
            assert letters == [
                {
                    "type": None,
                    "body": "not json {",
                    "reason": "message body is not JSON (Expecting value: line 1 column 1 (char 0))",
                    "error_class": "invalid_message",
                    "attempts": 1,
                },
                {
                    "type": "billing.invoice",
                    "body": '{"type": "billing.invoice", "scheduledFor": "2026-10-31T10:00:00Z"}',
                    "reason": "unknown message type 'billing.invoice'; known types: test.probe",
                    "error_class": "invalid_message",
                    "attempts": 1,
                },
            ]
            return tally

    tally = run(main())
    assert (tally.batches, dict(tally.statuses), tally.ok) == (
        1,
        {"succeeded": 1, "duplicate": 1, "dead_lettered": 2},
        False,
    )
    leases = [r.json for r in api.calls("/messages/pull")]
    assert leases == [{"batch_size": 10, "visibility_timeout_ms": 900_000}]
    acked = [a["lease_id"] for call in acks(api) for a in call["acks"]]
    assert sorted(acked) == sorted(api.leases) and len(api.leases) == 4
    assert all(call["retries"] == [] for call in acks(api))
    assert api.queue(QUEUE).messages == []
    dlq = sorted(
        (m.body for m in api.queue(DLQ).messages), key=lambda b: b["deadLetter"]["messageId"]
    )
    assert dlq == [
        {
            "body": "not json {",
            "deadLetter": {
                "reason": "message body is not JSON (Expecting value: line 1 column 1 (char 0))",
                "errorClass": "invalid_message",
                "attempts": 1,
                "job": None,
                "slot": None,
                "messageId": "00000000000000000000000000000003",
            },
        },
        {
            "type": "billing.invoice",
            "scheduledFor": "2026-10-31T10:00:00Z",
            "deadLetter": {
                "reason": "unknown message type 'billing.invoice'; known types: test.probe",
                "errorClass": "invalid_message",
                "attempts": 1,
                "job": None,
                "slot": None,
                "messageId": "00000000000000000000000000000004",
            },
        },
    ]


def test_a_transient_failure_is_handed_back_with_a_delay_and_succeeds_on_redelivery(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    job = make_job()
    api.send(QUEUE, json.loads(body(job)))

    async def main() -> None:
        async with rig(pg_dsn, api, job, FLAKY_SQL) as r:
            first = await r.consumer.run(max_batches=1)
            assert dict(first.statuses) == {"retry": 1} and not first.ok
            (lease,) = api.leases  # the one lease issued so far
            assert acks(api) == [{"acks": [], "retries": [{"lease_id": lease, "delay_seconds": 1}]}]
            empty = await r.consumer.run(max_batches=1)  # the delay has not passed
            assert sum(empty.statuses.values()) == 0
            api.advance(1)
            second = await r.consumer.run(max_batches=1)
            assert dict(second.statuses) == {"succeeded": 1} and second.ok
            assert await r.rows("SELECT status, attempt FROM cronwright.runs") == [
                {"status": "succeeded", "attempt": 2}
            ]
            assert await r.rows("SELECT count(*) AS n FROM cronwright.dead_letters") == [{"n": 0}]

    run(main())
    assert api.queue(QUEUE).messages == []


def test_a_dead_letter_is_recorded_in_postgres_first_and_a_dlq_outage_does_not_hand_it_back(
    pg_dsn: str, api: CfQueuesApi, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_job()
    api.send(QUEUE, "poison", content_type="text")
    for _ in range(3):  # the client's bounded attempts
        api.fail_next("/messages", 503)

    async def main() -> None:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            first = await r.consumer.run(max_batches=1)
            assert dict(first.statuses) == {"dead_lettered": 1}
            assert await r.rows("SELECT body, attempts FROM cronwright.dead_letters") == [
                {"body": "poison", "attempts": 1}
            ]

    run(main())
    assert api.queue(DLQ).messages == [] and api.queue(QUEUE).messages == []
    assert "not copied to the DLQ: Cloudflare API POST" in caplog.text


def test_hand_backs_do_not_use_up_the_jobs_attempt_budget(pg_dsn: str, api: CfQueuesApi) -> None:
    """Two attempts allowed: a delivery whose slot was not due yet, then a failure, then a
    success. Counted by Cloudflare's deliveries the failure would be attempt 2 of 2 and
    dead-lettered; counted as job attempts it is attempt 1 and is retried."""
    job = make_job(retry=RetryPolicy(max_attempts=2, initial_delay_seconds=1, max_delay_seconds=1))
    api.send(QUEUE, json.loads(body(job)))

    async def main() -> None:
        async with rig(pg_dsn, api, job, FLAKY_SQL) as r:
            r.clock.now = SLOT - timedelta(seconds=10)  # Cloudflare's clock ran ahead of ours
            early = await r.consumer.run(max_batches=1)
            assert dict(early.statuses) == {"retry": 1}
            assert await r.rows("SELECT count FROM cronwright.handbacks") == [{"count": 1}]
            assert await r.rows("SELECT count(*) AS n FROM cronwright.runs") == [{"n": 0}]
            r.clock.now = NOW
            api.advance(11)
            failed = await r.consumer.run(max_batches=1)
            assert dict(failed.statuses) == {"retry": 1}
            api.advance(2)
            done = await r.consumer.run(max_batches=1)
            assert dict(done.statuses) == {"succeeded": 1}
            assert await r.rows("SELECT status, attempt FROM cronwright.runs") == [
                {"status": "succeeded", "attempt": 2}
            ]
            assert await r.rows("SELECT count(*) AS n FROM cronwright.dead_letters") == [{"n": 0}]
            assert await r.rows("SELECT count(*) AS n FROM cronwright.handbacks") == [{"n": 0}]

    run(main())
    assert [m.attempts for m in api.queue(QUEUE).messages] == []


def test_cloudflares_dlq_never_gets_a_message_without_its_dead_letter_row(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    """A slot that stays ahead of our clock is handed back on every delivery. On the last
    delivery the queue allows, the consumer dead-letters it itself (row first, then its
    copy to the DLQ) instead of letting Cloudflare move it there unrecorded."""
    job = make_job(retry=RetryPolicy(max_attempts=2, initial_delay_seconds=1, max_delay_seconds=1))
    limit = make_manifest(job).consumer_max_retries
    api.set_consumer(QUEUE, max_retries=limit, dead_letter_queue=DLQ)
    api.send(QUEUE, json.loads(body(job)))

    async def main() -> None:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            r.clock.now = SLOT - timedelta(seconds=10)
            statuses: list[str] = []
            for _ in range(limit + 1):
                tally = await r.consumer.run(max_batches=1)
                statuses += list(tally.statuses.elements())
                api.advance(11)
            assert statuses == ["retry"] * limit + ["dead_lettered"]
            letters = await r.rows("SELECT message_id, error_class FROM cronwright.dead_letters")
            assert letters == [
                {"message_id": "00000000000000000000000000000001", "error_class": "slot_not_due"}
            ]

    run(main())
    assert api.queue(QUEUE).messages == []
    dlq = api.queue(DLQ).messages
    assert [m.body["deadLetter"]["messageId"] for m in dlq] == ["00000000000000000000000000000001"]
    assert (
        dlq[0]
        .body["deadLetter"]["reason"]
        .startswith(f"delivery {limit + 1} of the {limit + 1} the queue allows ended in a retry: ")
    )


def test_a_job_retry_on_the_last_delivery_is_dead_lettered_and_marked_in_the_ledger(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    """More hand-backs than the queue's room: the job's first real attempt falls on the
    last delivery Cloudflare allows. Its retry would send the message to Cloudflare's
    DLQ unrecorded, so the consumer dead-letters it and marks the slot."""
    job = make_job(retry=RetryPolicy(max_attempts=2, initial_delay_seconds=1, max_delay_seconds=1))
    limit = make_manifest(job).consumer_max_retries  # deliveries allowed: limit + 1
    api.set_consumer(QUEUE, max_retries=limit, dead_letter_queue=DLQ)
    api.send(QUEUE, json.loads(body(job)))

    async def main() -> None:
        async with rig(pg_dsn, api, job, "SELECT probe.flaky(100);\n") as r:
            r.clock.now = SLOT - timedelta(seconds=10)
            for _ in range(limit):  # every delivery but the last is handed back
                assert dict((await r.consumer.run(max_batches=1)).statuses) == {"retry": 1}
                api.advance(11)
            r.clock.now = NOW
            last = await r.consumer.run(max_batches=1)
            assert dict(last.statuses) == {"dead_lettered": 1}
            assert await r.rows("SELECT status, attempt, error_class FROM cronwright.runs") == [
                {"status": "dead_lettered", "attempt": 1, "error_class": "serialization_failure"}
            ]
            (letter,) = await r.rows("SELECT attempts, reason FROM cronwright.dead_letters")
            assert letter["attempts"] == 1
            assert letter["reason"].startswith(
                f"delivery {limit + 1} of the {limit + 1} the queue allows ended in a retry:"
                " serialization_failure (40001): simulated conflict"
            )

    run(main())
    assert api.queue(QUEUE).messages == []
    assert [m.body["deadLetter"]["attempts"] for m in api.queue(DLQ).messages] == [1]


def test_a_dead_letter_whose_row_cannot_be_written_is_handed_back_and_never_copied(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    """The row in cronwright.dead_letters is the record of truth: when writing it fails,
    Cloudflare's DLQ gets nothing and the message comes back for another try."""
    job = make_job()
    api.send(QUEUE, "not json {", content_type="text")

    async def main() -> None:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            async with r.db.transaction() as tx:
                await tx.script(REFUSE_DEAD_LETTERS)
            first = await r.consumer.run(max_batches=1)
            assert dict(first.statuses) == {"retry": 1}
            assert api.queue(DLQ).messages == []
            assert await r.rows("SELECT count(*) AS n FROM cronwright.dead_letters") == [{"n": 0}]
            assert [m.body for m in api.queue(QUEUE).messages] == ["not json {"]
            async with r.db.transaction() as tx:
                await tx.script("DROP TRIGGER refuse ON cronwright.dead_letters")
            api.advance(31)
            second = await r.consumer.run(max_batches=1)
            assert dict(second.statuses) == {"dead_lettered": 1}
            assert await r.rows("SELECT body FROM cronwright.dead_letters") == [
                {"body": "not json {"}
            ]

    run(main())
    assert api.queue(QUEUE).messages == []
    assert [m.body["body"] for m in api.queue(DLQ).messages] == ["not json {"]


REFUSE_DEAD_LETTERS = """
CREATE FUNCTION probe.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'dead letters are refused' USING ERRCODE = 'disk_full';
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON cronwright.dead_letters
    FOR EACH ROW EXECUTE FUNCTION probe.refuse();
"""


def test_a_long_job_holds_no_short_message_behind_it(api: CfQueuesApi) -> None:
    """One 60-second job and 20 short ones in one pull: the short ones are acked within
    seconds, and pulling goes on while the long one runs."""
    api.send(QUEUE, {"type": "test.long"})
    for n in range(20):
        api.send(QUEUE, {"type": "test.short", "n": n})
    release = asyncio.Event()

    class Mixed:
        async def handle(
            self, body: Any, *, message_id: str, attempt: int, last_delivery: str | None = None
        ) -> Outcome:
            if b"test.long" in body:
                await asyncio.wait_for(release.wait(), timeout=60)
            return Outcome(status="succeeded", job="j", type="t", slot=None, attempt=attempt)

    async def main() -> Tally:
        async with open_client(api) as client:
            ids = await client.queue_ids([QUEUE, DLQ])
            consumer = PullConsumer(
                client=client,
                executor=Mixed(),
                queue_id=ids[QUEUE],
                settings=Consumer(max_batch_size=21),
                concurrency=22,
            )
            task = asyncio.create_task(consumer.run())
            started = time.monotonic()
            while sum(len(c["acks"]) for c in acks(api)) < 20:
                assert time.monotonic() - started < 5, "the short messages were not acked"
                await asyncio.sleep(0.02)
            first_pulls = len(api.calls("/messages/pull"))
            api.send(QUEUE, {"type": "test.short", "n": 20})  # arrives while the long one runs
            while sum(len(c["acks"]) for c in acks(api)) < 21:
                assert time.monotonic() - started < 10, "pulling stopped behind the long job"
                await asyncio.sleep(0.02)
            assert len(api.calls("/messages/pull")) > first_pulls
            assert [m.body for m in api.queue(QUEUE).messages] == [{"type": "test.long"}]
            consumer.stop()
            release.set()
            return await task

    tally = run(main())
    assert (dict(tally.statuses), tally.ok) == ({"succeeded": 22}, True)
    assert api.queue(QUEUE).messages == []
    assert json.dumps(api.calls("/messages/pull")[0].json) == (
        '{"batch_size": 21, "visibility_timeout_ms": 900000}'
    )


def test_a_delivery_the_executor_cannot_handle_is_handed_back_with_the_queue_delay(
    api: CfQueuesApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.send(QUEUE, {"type": "test.probe"})

    class Broken:
        async def handle(
            self, body: Any, *, message_id: str, attempt: int, last_delivery: str | None = None
        ) -> Outcome:
            raise ConfigError("the database pool is closed")

    async def main() -> Tally:
        async with open_client(api) as client:
            ids = await client.queue_ids([QUEUE, DLQ])
            consumer = PullConsumer(
                client=client,
                executor=Broken(),
                queue_id=ids[QUEUE],
                settings=Consumer(retry_delay_seconds=30),
            )
            return await consumer.run(max_batches=1)

    tally = run(main())
    assert (tally.errors, tally.ok) == (1, False)
    assert acks(api)[0]["retries"][0]["delay_seconds"] == 30
    assert (
        "message 00000000000000000000000000000001 failed: the database pool is closed; going on"
        in caplog.text
    )


def test_a_failed_ack_call_leaves_the_leases_to_lapse_and_the_rerun_is_a_duplicate(
    pg_dsn: str, api: CfQueuesApi, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_job()
    api.send(QUEUE, json.loads(body(job)))
    for _ in range(3):
        api.fail_next("/messages/ack", 500)

    async def main() -> None:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            first = await r.consumer.run(max_batches=1)
            assert (dict(first.statuses), first.ack_failures, first.ok) == (
                {"succeeded": 1},
                1,
                False,
            )
            api.advance(901)  # the visibility timeout
            again = await r.consumer.run(max_batches=1)
            assert (dict(again.statuses), again.ok) == ({"duplicate": 1}, True)
            assert await r.rows("SELECT n FROM probe.counter") == [{"n": 1}]

    run(main())
    assert api.queue(QUEUE).messages == []
    assert "Cloudflare Queues API unreachable for 0 s: Cloudflare API POST" in caplog.text
    assert TOKEN not in caplog.text


def test_an_idle_queue_backs_off_and_a_service_rides_out_an_outage(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    job = make_job()

    async def main() -> None:
        async with rig(pg_dsn, api, job, EFFECT_SQL) as r:
            tally = await r.consumer.run(max_batches=4)
            assert (tally.batches, r.idle.delays) == (4, [1.0, 2.0, 4.0])
            r.idle.delays.clear()
            for _ in range(3):
                api.fail_next("/messages/pull", 503)
            api.send(QUEUE, json.loads(body(job)))
            r.idle.stop_after = 2
            service = await r.consumer.run()
            assert (dict(service.statuses), r.idle.delays) == ({"succeeded": 1}, [1.0, 1.0])

    run(main())


def test_the_worker_consumer_type_is_refused() -> None:
    manifest = make_manifest(make_job())
    worker = replace(
        manifest, queue=replace(manifest.queue, consumer=Consumer(type=ConsumerType.WORKER))
    )
    with pytest.raises(ConfigError) as caught:
        run(service.run(worker, service.Options(transport="cloudflare"), environ={}))
    assert str(caught.value) == (
        "queue probe-jobs is consumed by the Worker (queue.consumer.type: worker), so nothing"
        " may pull it; set queue.consumer.type: http_pull and run generated/preflight.sh to pull,"
        " or run the local queue with --transport postgres"
    )


def test_missing_cloudflare_settings_are_named_before_anything_opens() -> None:
    with pytest.raises(ConfigError) as caught:
        run(
            service.run(
                make_manifest(make_job()),
                service.Options(transport="cloudflare"),
                environ={"DATABASE_URL": "postgresql://x@127.0.0.1:9/x"},
            )
        )
    assert str(caught.value) == (
        "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN are not set; the Queues API needs"
        " an API token with Queues Edit and its account id; without Cloudflare, use the"
        " Postgres queue (--transport postgres, or transport: postgres in the manifest)"
    )


# --- the CLI, end to end in a subprocess ----------------------------------------------

MANIFEST = """\
version: 1
plan: paid
trigger_budget: 10
worker: {name: probe-worker, main: worker.js, compatibility_date: "2026-04-01", cron_flag: ENABLE_CRON}
queue:
  name: probe-jobs
  binding: JOBS
  dead_letter_queue: probe-jobs-dlq
  consumer: {type: http_pull, max_batch_size: 10, retry_delay_seconds: 30, visibility_timeout_seconds: 120}
environments:
  staging: {queue: probe-jobs-staging, dead_letter_queue: probe-jobs-staging-dlq}
jobs:
  probe:
    type: test.probe
    cron: "0 * * * *"
    sql: sql/probe.sql
    window: {period: hour, offset: -1}
    timeout_seconds: 30
    params: {value: v}
  slow:
    type: test.slow
    cron: "0 * * * *"
    sql: sql/slow.sql
    window: {period: hour, offset: -1}
    timeout_seconds: 30
"""


@dataclass
class Project:
    dir: Path
    dsn: str
    api: CfQueuesApi
    procs: list[subprocess.Popen[str]]

    def cli(self, *args: str, token: str = TOKEN) -> subprocess.Popen[str]:
        """``cronwright consume ARGS`` in a subprocess, against the local API."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "R2_"))}
        env |= {
            "DATABASE_URL": self.dsn,
            "CLOUDFLARE_API_TOKEN": token,
            "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "CLOUDFLARE_API_BASE_URL": self.api.url,
        }
        manifest = str(self.dir / "jobs.yaml")
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "-m", manifest, "consume", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc


@pytest.fixture
def project(tmp_path: Path, pg_dsn: str, api: CfQueuesApi) -> Iterator[Project]:
    (tmp_path / "sql").mkdir()
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    (tmp_path / "sql" / "probe.sql").write_text(EFFECT_SQL)
    (tmp_path / "sql" / "slow.sql").write_text("SELECT pg_sleep(1.5);\n")

    async def setup() -> None:
        async with Database.open(pg_dsn, max_size=1) as db, db.transaction() as tx:
            await tx.script(SETUP_SQL)

    run(setup())
    p = Project(dir=tmp_path, dsn=pg_dsn, api=api, procs=[])
    try:
        yield p
    finally:
        for proc in p.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)


def slot_body(type_: str, hours_ago: int = 2) -> dict[str, str]:
    slot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)
    return {"type": type_, "scheduledFor": slot.strftime("%Y-%m-%dT%H:%M:%SZ")}


def finish(proc: subprocess.Popen[str], token: str = TOKEN) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    assert token not in out + err
    return proc.returncode, out, err


def metric_lines(err: str) -> list[dict[str, Any]]:
    """The metric records among what the consumer wrote to stderr (its log lines too)."""
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.02)


def test_consume_once_exits_0_when_every_message_succeeded_and_1_otherwise(
    project: Project, api: CfQueuesApi
) -> None:
    api.send(QUEUE, slot_body("test.probe"))
    api.send(QUEUE, slot_body("test.probe"))
    code, out, err = finish(project.cli("--once"))
    assert (code, out) == (
        0,
        "2 messages in 1 pull: succeeded 1, retry 0, dead_lettered 0, duplicate 1, paused 0, superseded 0\n",
    ), err
    assert [line["status"] for line in metric_lines(err)] == ["succeeded", "duplicate"]

    api.send(QUEUE, b"\xff", content_type="bytes")
    code, out, err = finish(project.cli("--once"))
    assert (code, out) == (
        1,
        "1 message in 1 pull: succeeded 0, retry 0, dead_lettered 1, duplicate 0, paused 0, superseded 0\n",
    ), err
    assert [m.body for m in api.queue(DLQ).messages] == [
        {
            "body": "\\xff",
            "deadLetter": {
                "reason": "message body is not UTF-8 (invalid start byte at byte 0)",
                "errorClass": "invalid_message",
                "attempts": 1,
                "job": None,
                "slot": None,
                "messageId": "00000000000000000000000000000003",
            },
        }
    ]


def test_consume_with_a_refused_token_exits_1_without_printing_it(
    project: Project, api: CfQueuesApi
) -> None:
    wrong = "wrong-" + TOKEN
    code, out, err = finish(project.cli("--once", token=wrong), wrong)
    assert (code, out) == (1, "")
    assert err == (
        "error: Cloudflare API GET /queues: HTTP 403 (10000: Authentication error); check"
        " CLOUDFLARE_API_TOKEN: it needs Account > Queues > Edit (queues read and write)\n"
    )


def test_a_crash_before_the_ack_redelivers_and_the_rerun_is_a_duplicate(
    project: Project, api: CfQueuesApi
) -> None:
    api.send(QUEUE, slot_body("test.probe"))
    api.hold_acks()
    proc = project.cli("--once")
    wait_for(lambda: api.held, "the ack call")
    proc.kill()  # the job committed; the ack never reached Cloudflare
    code, _, _ = finish(proc)
    assert code == -signal.SIGKILL
    api.holding = False
    assert api.queue(QUEUE).messages[0].attempts == 1
    api.advance(121)  # the manifest's visibility timeout
    code, out, err = finish(project.cli("--once"))
    assert (code, out) == (
        0,
        "1 message in 1 pull: succeeded 0, retry 0, dead_lettered 0, duplicate 1, paused 0, superseded 0\n",
    ), err
    assert metric_lines(err)[0]["attempt"] == 2
    assert api.queue(QUEUE).messages == []


def test_sigterm_stops_pulling_finishes_the_run_in_flight_acks_it_and_exits_0(
    project: Project, api: CfQueuesApi
) -> None:
    api.send(QUEUE, slot_body("test.slow"))
    proc = project.cli()
    wait_for(lambda: any(m.lease for m in api.queue(QUEUE).messages), "the pull")
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    # The consumer keeps pulling while the slow job runs, so the pulls are not counted here.
    pulls = len(api.calls("/messages/pull"))
    assert (code, out) == (
        0,
        f"1 message in {pulls} pull{'s' * (pulls != 1)}: succeeded 1, retry 0,"
        " dead_lettered 0, duplicate 0, paused 0, superseded 0\n",
    ), err
    assert "SIGTERM: finishing the running jobs, then stopping" in err
    assert api.queue(QUEUE).messages == []


def test_messages_of_a_batch_run_concurrently_so_each_lease_covers_only_its_own_run(
    api: CfQueuesApi,
) -> None:
    """Every message is leased at the pull: run one after another, the last one would
    wait for the others while its lease ran out. Each handler here waits until all of
    the batch is in flight, which only completes if they run at once."""
    for n in range(3):
        api.send(QUEUE, {"type": "test.probe", "n": n})

    class Barrier:
        def __init__(self, parties: int) -> None:
            self.started = 0
            self.parties = parties
            self.all_in = asyncio.Event()

        async def handle(
            self, body: Any, *, message_id: str, attempt: int, last_delivery: str | None = None
        ) -> Outcome:
            self.started += 1
            if self.started == self.parties:
                self.all_in.set()
            await asyncio.wait_for(self.all_in.wait(), timeout=5)
            return Outcome(
                status="succeeded", job="probe", type="test.probe", slot=None, attempt=attempt
            )

    async def main() -> Tally:
        async with open_client(api) as client:
            ids = await client.queue_ids([QUEUE, DLQ])
            consumer = PullConsumer(
                client=client, executor=Barrier(3), queue_id=ids[QUEUE], settings=Consumer()
            )
            return await consumer.run(max_batches=1)

    tally = run(main())
    assert (dict(tally.statuses), tally.errors, tally.ok) == ({"succeeded": 3}, 0, True)
    assert len(acks(api)[0]["acks"]) == 3


def test_consume_with_an_environment_pulls_that_environments_queue(
    project: Project, api: CfQueuesApi
) -> None:
    api.create_queue("probe-jobs-staging")
    api.create_queue("probe-jobs-staging-dlq")
    api.send("probe-jobs-staging", slot_body("test.probe"))
    api.send(QUEUE, slot_body("test.probe", hours_ago=3))
    code, out, err = finish(project.cli("--once", "--env", "staging"))
    assert (code, out) == (
        0,
        "1 message in 1 pull: succeeded 1, retry 0, dead_lettered 0, duplicate 0, paused 0, superseded 0\n",
    ), err
    assert api.queue("probe-jobs-staging").messages == []
    assert len(api.queue(QUEUE).messages) == 1


def test_consume_serves_prometheus_metrics_with_runs_by_job_and_the_queues_backlog(
    project: Project, api: CfQueuesApi
) -> None:
    from devtools.ports import free_port

    api.send(QUEUE, slot_body("test.probe"))
    port = free_port()
    proc = project.cli("--metrics-port", str(port))
    scraped: list[str] = []

    def scrape() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return False
        scraped[:] = [text]
        return 'cronwright_runs_total{job="probe",status="succeeded"} 1.0' in text

    wait_for(scrape, "a scrape showing the run", timeout=60)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        assert r.read() == b"ok\n"
    backlog = 'cronwright_queue_depth{queue="probe-jobs",state="backlog"} 0.0'
    # The gauges refresh every 15 s; the backlog is what the last pull reported.
    wait_for(lambda: scrape() and backlog in scraped[0], "the backlog gauge", timeout=40)
    proc.send_signal(signal.SIGTERM)
    code, _, _ = finish(proc)
    assert code == 0
