"""Fuzzing both consumers' handling of a delivery, above the executor: whatever a batch of
messages holds, the local consumer and the pull consumer run to their end without an
exception, record an outcome for every message, and leave none unsettled (done and
acknowledged, or handed back with a delay)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.adapters.cfqueue import QueuesClient, Settings
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue
from engine.app.localconsumer import LocalConsumer, LocalSettings
from engine.app.pullconsumer import PullConsumer
from engine.runtime.budget import DeliveryBudget
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN, CfQueuesApi, serve
from tests.integration.executor_support import FakeClock, RecordingSleep, make_manifest
from tests.integration.test_fuzz_executor import JOB, loop, messages, runnable

pytestmark = [pytest.mark.postgres, pytest.mark.fuzz]
__all__ = ["loop"]  # the event loop fixture the executor's fuzz tests use

QUEUE, DLQ = "probe-jobs", "probe-jobs-dlq"
texts = runnable.map(json.dumps) | messages.map(json.dumps) | st.text(max_size=200)
# The local queue stores text: a body it could hold (Postgres text has no NUL).
batches = st.lists(texts.filter(lambda t: "\x00" not in t), min_size=1, max_size=12)


def executor(db: Database) -> Executor:
    return Executor(
        db=db,
        manifest=make_manifest(JOB),
        templates={JOB.template: "SELECT 1"},
        actions={},
        dead_letters=PgDeadLetters(db),
        metrics=Collect(),
        clock=FakeClock(),
        sleep=RecordingSleep(),
        rng=random.Random(0),
    )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=batches)
def test_the_local_consumer_settles_every_message_of_any_batch(
    pg_dsn: str, loop: asyncio.AbstractEventLoop, batch: list[str]
) -> None:
    async def main() -> tuple[int, list[dict[str, Any]]]:
        async with Database.open(pg_dsn, max_size=6) as db:
            async with db.transaction() as tx:
                await tx.execute("DELETE FROM cronwright.queue")
            queue = PgQueue(db, QUEUE, clock=FakeClock())
            await queue.put_raw(batch)
            consumer = LocalConsumer(
                queue=queue,
                executor=executor(db),
                settings=LocalSettings(consumers=2, idle_seconds=0.05),
                max_messages=len(batch),
            )
            tally = await asyncio.wait_for(consumer.run(), 60)
            left = await db.fetch(
                "SELECT lease_id, visible_at > $1 AS later FROM cronwright.queue", FakeClock()()
            )
            return sum(tally.statuses.values()) + tally.errors, left

    handled, left = loop.run_until_complete(main())
    assert handled == len(batch)
    # What is left is handed back for later, never leased and forgotten.
    assert all(r["lease_id"] is None and r["later"] for r in left), left


@pytest.fixture
def api() -> Iterator[CfQueuesApi]:
    with serve() as api:
        api.create_queue(QUEUE)
        api.create_queue(DLQ)
        yield api


kinds = st.sampled_from(["json", "text", "bytes"])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(st.tuples(texts | st.binary(max_size=64), kinds), min_size=1, max_size=8))
def test_the_pull_consumer_settles_every_message_of_any_batch(
    pg_dsn: str, api: CfQueuesApi, loop: asyncio.AbstractEventLoop, batch: list[tuple[Any, str]]
) -> None:
    api.queue(QUEUE).messages.clear()
    for body, kind in batch:
        if kind == "json":
            try:
                body = json.loads(body) if isinstance(body, str) else body
            except json.JSONDecodeError:
                kind = "text"
        if isinstance(body, bytes) and kind != "bytes":
            kind = "bytes"
        if kind == "bytes" and isinstance(body, str):
            body = body.encode()
        api.send(QUEUE, body, content_type=kind)

    async def main() -> int:
        settings_ = Settings(account_id=ACCOUNT, token=TOKEN, base_url=api.url)
        async with (
            Database.open(pg_dsn, max_size=12) as db,
            QueuesClient(settings_, sleep=RecordingSleep()) as client,
        ):
            ids = await client.queue_ids([QUEUE])
            manifest = make_manifest(JOB)
            consumer = PullConsumer(
                client=client,
                executor=executor(db),
                queue_id=ids[QUEUE],
                settings=manifest.queue.consumer,
                budget=DeliveryBudget(db, QUEUE, manifest.consumer_max_retries + 1),
            )
            tally = await asyncio.wait_for(consumer.run(max_batches=1), 60)
            return sum(tally.statuses.values()) + tally.errors

    assert loop.run_until_complete(main()) == len(batch)
    # Every message was acked or handed back with a delay: none is still leased.
    assert all(m.lease is None for m in api.queue(QUEUE).messages)
