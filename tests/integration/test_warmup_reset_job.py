"""The warmup reset job of the real jobs.yaml, end to end on real PostgreSQL and
miniflare's R2 S3 endpoint: its domains come from ``delivery.sending_domains``, it goes
through the executor like the SQL jobs (ledger, retries, metric, dead letter), it
reports how many counters it reset, and running it twice is harmless. Also through the
real CLI, configured from the environment only."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import manifest
from engine.adapters.pg import Database
from engine.adapters.s3 import R2CounterStore
from engine.app import wiring
from engine.core.times import iso
from engine.runtime import deadletters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from engine.runtime.outcome import Outcome
from engine.runtime.warmup import WarmupReset, counter_key, utc_day_start
from tests.fixtures.aio import run
from tests.fixtures.postgres import PgServer
from tests.fixtures.s3 import Fault, FaultProxy, S3Server, Seen, empty_bucket, list_keys
from tests.integration.executor_support import FakeClock, RecordingSleep

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = manifest.load(str(ROOT / "jobs.yaml"))
JOB = MANIFEST.find_job("analytics.warmup-daily-reset")
TYPE = "analytics.warmup-daily-reset"
# The store's own retries: two tries per request, and the waits are only recorded.
TWO_TRIES = 2  # the store's client makes at most two tries of each request

ORG_A, ORG_B, ORG_C = (str(uuid.uuid4()) for _ in range(3))


@dataclass(frozen=True)
class Domain:
    org: str
    domain: str
    status: str
    age: timedelta  # created this long before the slot
    selected: bool  # verified and created in the 30 days before the slot
    counter: bool = True  # an R2 counter was written for it

    @property
    def key(self) -> str:
        return counter_key(self.org, self.domain)


DOMAINS = (
    Domain(ORG_A, "new.example", "verified", timedelta(days=1), selected=True),
    Domain(ORG_A, "month-old.example", "verified", timedelta(days=29, hours=23), selected=True),
    Domain(ORG_A, "shared.example", "verified", timedelta(days=3), selected=True),
    Domain(ORG_A, "old.example", "verified", timedelta(days=30, seconds=1), selected=False),
    Domain(ORG_A, "pending.example", "pending", timedelta(days=2), selected=False),
    Domain(ORG_A, "failed.example", "failed", timedelta(days=2), selected=False),
    Domain(ORG_B, "edge.example", "verified", timedelta(days=30), selected=True),
    Domain(ORG_B, "at-slot.example", "verified", timedelta(0), selected=False),
    # The same domain name in another org is another counter.
    Domain(ORG_B, "shared.example", "pending", timedelta(days=3), selected=False),
    # Selected, but it sent nothing, so there is no counter to reset.
    Domain(ORG_B, "silent.example", "verified", timedelta(days=5), selected=True, counter=False),
    Domain(ORG_C, "only-pending.example", "pending", timedelta(days=10), selected=False),
)
WITH_COUNTER = [d for d in DOMAINS if d.counter]
RESET = sorted(d.key for d in WITH_COUNTER if d.selected)
KEPT = sorted(d.key for d in WITH_COUNTER if not d.selected)
# A counter whose domain is not in delivery.sending_domains at all.
GONE = Domain(ORG_C, "gone.example", "deleted", timedelta(0), selected=False)
STRAY = GONE.key


@pytest.fixture
def r2(miniflare_r2: S3Server) -> Iterator[S3Server]:
    """miniflare's R2 with an empty bucket (it is shared by the whole session)."""
    empty_bucket(miniflare_r2)
    yield miniflare_r2
    empty_bucket(miniflare_r2)


async def insert_domains(dsn: str, slot: datetime) -> None:
    naive_slot = slot.astimezone(UTC).replace(tzinfo=None)  # created_at is UTC `timestamp`
    async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
        for d in DOMAINS:
            created = naive_slot - d.age
            await tx.execute(
                "INSERT INTO delivery.sending_domains"
                " (organization_id, domain, status, verified_at, created_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                uuid.UUID(d.org),
                d.domain,
                d.status,
                created + timedelta(hours=1) if d.status == "verified" else None,
                created,
            )


async def write_counters(server: S3Server, day: datetime, keys: list[str] | None = None) -> None:
    """Write counters through the R2 store's own increment, counting ``day``: every
    counter of WITH_COUNTER plus STRAY, or only ``keys``."""
    async with R2CounterStore(server.settings(), clock=lambda: day) as store:
        for i, d in enumerate([*WITH_COUNTER, GONE]):
            if keys is None or d.key in keys:
                assert await store.increment(d.org, d.domain, i + 1) == i + 1


def seed_counters(server: S3Server) -> None:
    """Every counter, counting today."""
    run(write_counters(server, datetime.now(UTC)))


def counter_keys(server: S3Server) -> list[str]:
    return sorted(list_keys(server, "warmup/daily/"))


def tomorrow() -> datetime:
    """Tomorrow's 00:00 UTC: a slot after every counter written so far (R2 stamps
    LastModified with the real clock, and the reset removes those before the slot)."""
    return utc_day_start(datetime.now(UTC)) + timedelta(days=1)


async def runs_and_dead_letters(
    dsn: str,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    async with Database.open(dsn, max_size=1) as db:
        runs = await db.fetch(
            "SELECT job, slot, status, attempt, rows, error_class, error, message_id"
            " FROM cronwright.runs ORDER BY job, slot"
        )
        letters = await db.fetch(
            "SELECT job, type, slot, message_id, body, reason, error_class, attempts"
            " FROM cronwright.dead_letters ORDER BY id"
        )
    return runs, letters


def test_reset_job_removes_exactly_the_warmup_domains_counters_and_replays_as_duplicate(
    pg_dsn: str, r2: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run_job opens the environment's store even when actions are given: keep a
    # developer's R2_* out of it.
    for name in [n for n in os.environ if n.startswith("R2_")]:
        monkeypatch.delenv(name)
    seed_counters(r2)
    slot = tomorrow()
    run(insert_domains(pg_dsn, slot))
    assert counter_keys(r2) == sorted([*RESET, *KEPT, STRAY])
    metrics = Collect()

    async def run_twice() -> tuple[Outcome, Outcome]:
        store = R2CounterStore(r2.settings(), clock=lambda: slot + timedelta(minutes=5))
        async with store:
            actions = {"warmup-reset": WarmupReset(store)}

            async def once() -> Outcome:
                return await wiring.run_job(
                    MANIFEST,
                    TYPE,
                    slot,
                    dsn=pg_dsn,
                    actions=actions,
                    metrics=metrics,
                    clock=lambda: slot + timedelta(minutes=5),
                )

            first = await once()
            assert counter_keys(r2) == sorted([*KEPT, STRAY])
            # New counts for the reset domains: a replay of the done slot must keep them.
            await write_counters(r2, slot, RESET)
            return first, await once()

    first, second = run(run_twice())
    assert (first.status, first.rows, first.attempt, first.error_class) == (
        "succeeded",
        len(RESET),
        1,
        None,
    )
    assert (second.status, second.rows) == ("duplicate", None)
    assert counter_keys(r2) == sorted([*RESET, *KEPT, STRAY])

    rows = run(wiring.list_runs(pg_dsn, job=JOB.name))
    assert [(r["slot"], r["status"], r["attempt"], r["rows"], r["error_class"]) for r in rows] == [
        (slot, "succeeded", 1, len(RESET), None)
    ]
    records = [r.as_dict() for r in metrics.records]
    for record in records:
        assert record.pop("durationMs") >= 0
    expected = {
        "queue": MANIFEST.queue.name,
        "messageId": f"cli-{iso(slot)}",
        "eventType": TYPE,
        "attempt": 1,
        "slot": iso(slot),
        "errorClass": None,
    }
    assert records == [
        {**expected, "status": "succeeded", "rows": len(RESET)},
        {**expected, "status": "duplicate", "rows": None},
    ]


def cli_env(dsn: str, server: S3Server, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2_") and k != "DATABASE_URL"}
    env.update(
        DATABASE_URL=dsn,
        R2_ENDPOINT_URL=server.endpoint_url,
        R2_ACCESS_KEY_ID=server.access_key_id,
        R2_SECRET_ACCESS_KEY=server.secret_access_key,
        R2_BUCKET=server.bucket,
    )
    env.update(overrides)
    return env


def cli_run(env: dict[str, str], slot: datetime) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "-m",
            str(ROOT / "jobs.yaml"),
            "run",
            TYPE,
            "--at",
            iso(slot),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_secrets(done: subprocess.CompletedProcess[str], *secrets: str) -> None:
    output = done.stdout + done.stderr
    assert [s for s in secrets if s in output] == []


def test_cli_reset_reaches_r2_from_the_environment_and_keeps_counts_made_after_the_slot(
    pg_server: PgServer,
    pg_dsn: str,
    r2: S3Server,
    fault_proxy: Callable[..., FaultProxy],
) -> None:
    # The CLI runs on the real clock, so its slot is today's 00:00 UTC and every counter
    # written now is a count of today: a (late) reset for today must keep all of them.
    slot = utc_day_start(datetime.now(UTC))
    run(insert_domains(pg_dsn, slot))
    seed_counters(r2)
    before = counter_keys(r2)
    proxy = fault_proxy(r2)  # forwards everything; records what the CLI asked R2
    env = cli_env(pg_dsn, proxy.server)
    secrets = (r2.access_key_id, r2.secret_access_key, pg_server.password)

    first = cli_run(env, slot)
    assert (first.returncode, first.stdout) == (
        0,
        f"{TYPE} slot {iso(slot)}: succeeded rows=0\n",
    ), first.stderr
    listed = [(s.method, s.path.split("?")[0]) for s in proxy.requests]
    assert listed == [("GET", f"/cdn-cgi/local/r2/s3/{r2.bucket}")]
    assert "prefix=warmup%2Fdaily%2F" in proxy.requests[0].path
    assert counter_keys(r2) == before

    second = cli_run(env, slot)
    assert (second.returncode, second.stdout) == (0, f"{TYPE} slot {iso(slot)}: duplicate\n")
    assert len(proxy.requests) == 1  # a done slot never touches R2

    rows = run(wiring.list_runs(pg_dsn, job=JOB.name))
    assert [(r["slot"], r["status"], r["attempt"], r["rows"]) for r in rows] == [
        (slot, "succeeded", 1, 0)
    ]
    metric_lines = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    assert [(m["status"], m["eventType"], m["rows"]) for m in metric_lines] == [
        ("succeeded", TYPE, 0)
    ]
    assert_no_secrets(first, *secrets)
    assert_no_secrets(second, *secrets)


def test_cli_with_a_rejected_r2_secret_dead_letters_without_showing_it(
    pg_server: PgServer, pg_dsn: str, r2: S3Server
) -> None:
    slot = utc_day_start(datetime.now(UTC)) - timedelta(days=1)
    run(insert_domains(pg_dsn, slot))
    seed_counters(r2)
    before = counter_keys(r2)
    wrong = "WRONG" + r2.secret_access_key

    done = cli_run(cli_env(pg_dsn, r2, R2_SECRET_ACCESS_KEY=wrong), slot)
    reason = "permanent error: R2 ListObjectsV2 warmup/daily/: HTTP 403 SignatureDoesNotMatch"
    assert (done.returncode, done.stdout) == (
        1,
        f"{TYPE} slot {iso(slot)}: dead_lettered (auth: {reason})\n",
    ), done.stderr
    assert counter_keys(r2) == before
    runs, letters = run(runs_and_dead_letters(pg_dsn))
    assert [(r["status"], r["attempt"], r["error_class"]) for r in runs] == [
        ("dead_lettered", 1, "auth")
    ]
    assert [(x["job"], x["reason"], x["error_class"], x["attempts"]) for x in letters] == [
        (JOB.name, reason, "auth", 1)
    ]
    assert_no_secrets(done, wrong, r2.secret_access_key, r2.access_key_id, pg_server.password)


async def run_with_executor(
    dsn: str, server: S3Server, slot: datetime
) -> tuple[Outcome, Collect, RecordingSleep]:
    """The executor the runtime builds, except that its sleeps are recorded instead of
    waited (the job's real retry policy waits minutes), and the store's client makes at
    most TWO_TRIES of each request."""
    metrics, sleep = Collect(), RecordingSleep()
    store = R2CounterStore(
        server.settings(max_attempts=TWO_TRIES),
        clock=lambda: slot + timedelta(minutes=5),
    )
    async with wiring.open_database(dsn, max_size=2) as db, store:
        executor = Executor(
            db=db,
            manifest=MANIFEST,
            templates=wiring.load_templates(MANIFEST, [JOB]),
            actions={"warmup-reset": WarmupReset(store)},
            dead_letters=deadletters.PgDeadLetters(db),
            metrics=metrics,
            clock=FakeClock(slot + timedelta(minutes=5)),
            sleep=sleep,
            rng=random.Random(0),
        )
        outcome = await executor.run_until_done(JOB, slot, message_id="m-1")
    return outcome, metrics, sleep


def test_storage_that_keeps_failing_dead_letters_the_slot_after_the_jobs_max_attempts(
    pg_dsn: str, r2: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    seed_counters(r2)
    slot = tomorrow()
    run(insert_domains(pg_dsn, slot))
    proxy = fault_proxy(r2, lambda seen, index: Fault.SERVER_ERROR)

    outcome, metrics, sleep = run(run_with_executor(pg_dsn, proxy.server, slot))

    attempts = JOB.retry.max_attempts
    error = "R2 ListObjectsV2 warmup/daily/: HTTP 503 ServiceUnavailable after 2 attempts"
    reason = f"gave up after {attempts} of {attempts} attempts: {error}"
    assert (outcome.status, outcome.attempt, outcome.error_class, outcome.reason) == (
        "dead_lettered",
        attempts,
        "server",
        reason,
    )
    assert counter_keys(r2) == sorted([*RESET, *KEPT, STRAY])
    # Bounded: the job's attempts times the store's tries, and nothing more.
    assert len(proxy.requests) == attempts * TWO_TRIES == 16
    assert len(sleep.delays) == attempts - 1
    for n, delay in enumerate(sleep.delays, 1):
        cap = min(JOB.retry.initial_delay_seconds * 2 ** (n - 1), JOB.retry.max_delay_seconds)
        assert 0 <= delay <= cap
    assert [(r.status, r.attempt, r.error_class, r.rows) for r in metrics.records] == [
        *(("retry", n, "server", None) for n in range(1, attempts)),
        ("dead_lettered", attempts, "server", None),
    ]
    failed = run(wiring.list_runs(pg_dsn, failed_only=True))  # `cronwright runs --failed`
    assert [
        (r["slot"], r["status"], r["attempt"], r["rows"], r["error_class"], r["error"])
        for r in failed
    ] == [(slot, "dead_lettered", attempts, None, "server", error)]
    _, letters = run(runs_and_dead_letters(pg_dsn))
    assert letters == [
        {
            "job": JOB.name,
            "type": TYPE,
            "slot": slot,
            "message_id": "m-1",
            "body": json.dumps({"type": TYPE, "scheduledFor": iso(slot)}),
            "reason": reason,
            "error_class": "server",
            "attempts": attempts,
        }
    ]


def test_transient_storage_faults_are_retried_until_the_reset_succeeds(
    pg_dsn: str, r2: S3Server, fault_proxy: Callable[..., FaultProxy]
) -> None:
    seed_counters(r2)
    slot = tomorrow()
    run(insert_domains(pg_dsn, slot))
    faults = {0: Fault.SERVER_ERROR, 1: Fault.RESET, 2: Fault.THROTTLE}

    def plan(seen: Seen, index: int) -> Fault | None:
        return faults.get(index)

    proxy = fault_proxy(r2, plan)

    outcome, metrics, sleep = run(run_with_executor(pg_dsn, proxy.server, slot))

    # Attempt 1: a 503, then a reset connection exhaust the client's two tries. Attempt 2:
    # a 429, then the listing and the one DeleteObjects go through.
    assert (outcome.status, outcome.attempt, outcome.rows) == ("succeeded", 2, len(RESET))
    assert counter_keys(r2) == sorted([*KEPT, STRAY])
    assert [(r.status, r.attempt, r.error_class, r.rows) for r in metrics.records] == [
        ("retry", 1, "connection", None),
        ("succeeded", 2, None, len(RESET)),
    ]
    assert [index for index, _ in proxy.faults] == [0, 1, 2]
    deletes = [s.delete_keys for s in proxy.requests if s.is_delete_objects]
    assert [sorted(keys) for keys in deletes] == [RESET]
    assert len(proxy.requests) == 5
    assert len(sleep.delays) == 1
    runs, letters = run(runs_and_dead_letters(pg_dsn))
    assert [(r["status"], r["attempt"], r["rows"], r["error_class"]) for r in runs] == [
        ("succeeded", 2, len(RESET), None)
    ]
    assert letters == []
