"""The reconciler and slot accounting on real PostgreSQL, pushing to the local stand-in
of Cloudflare's Queues REST API: a slot the Worker never sent is pushed once, also with
two reconcilers at once; pauses and the cron flag are respected; each catch-up policy
enqueues what it promises after an outage; and every slot status, one query per job."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.cfqueue import QueuesClient, Settings
from engine.adapters.cfsender import CloudflareSender
from engine.adapters.pg import Database
from engine.app import service
from engine.app.reconciler import Reconciler
from engine.core.model import CatchUp, CatchUpPolicy, Job, Manifest
from engine.runtime import scheduling
from engine.runtime.dispatch import Slot
from engine.runtime.metrics import Collect
from engine.runtime.slotbook import SlotBook
from engine.runtime.slotstore import PgSlotStore
from tests.fixtures.aio import run
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN, CfQueuesApi, serve
from tests.integration.executor_support import FakeClock, make_job, make_manifest

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "probe-jobs"
T0 = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)  # the last slot before the outage
HOUR = timedelta(hours=1)
GRACE = 600  # the Worker's slots: it records nothing until they run
DEPLOYED = T0 - timedelta(days=30)  # when the jobs were first seen, unless a test says


@pytest.fixture
def api() -> Iterator[CfQueuesApi]:
    with serve() as api:
        api.create_queue(QUEUE)
        yield api


def hourly(policy: CatchUpPolicy = CatchUpPolicy.ALL, within: int = 86_400, **kw: Any) -> Job:
    return replace(make_job(**kw), catch_up=CatchUp(policy=policy, within_seconds=within))


async def deploy(dsn: str, manifest: Manifest, at: datetime = DEPLOYED) -> None:
    """The jobs were first seen at ``at`` (a project that has been running)."""
    await sql(
        dsn,
        "INSERT INTO cronwright.jobs SELECT j, $2 FROM unnest($1::text[]) AS j"
        " ON CONFLICT DO NOTHING",
        [j.name for j in manifest.jobs],
        at,
    )


class Pass:
    """A reconciler and its clock: ``run_once()`` is a pass at the clock's now."""

    def __init__(self, reconciler: Reconciler, clock: FakeClock) -> None:
        self._reconciler = reconciler
        self._clock = clock

    async def run_once(self) -> list[Slot]:
        return await self._reconciler.run_once(self._clock())


@asynccontextmanager
async def reconciler(
    dsn: str,
    api: CfQueuesApi,
    manifest: Manifest,
    clock: FakeClock,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[Pass]:
    settings = Settings(account_id=ACCOUNT, token=TOKEN, base_url=api.url)
    await deploy(dsn, manifest)
    async with Database.open(dsn, max_size=2) as db, QueuesClient(settings) as client:
        ids = await client.queue_ids([QUEUE])
        sender = CloudflareSender(client, ids[QUEUE])
        book = SlotBook(
            PgSlotStore(db), manifest.jobs, grace=timedelta(seconds=GRACE), register=True
        )
        yield Pass(Reconciler(db, manifest, sender, book, environ=environ or {}), clock)


async def sql(dsn: str, text: str, *args: Any) -> list[dict[str, Any]]:
    async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
        return await tx.fetch(text, *args)


async def succeed(dsn: str, job: str, *slots: datetime) -> None:
    await sql(
        dsn,
        "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
        " SELECT $1, s, 'succeeded', 1, s FROM unnest($2::timestamptz[]) AS s",
        job,
        list(slots),
    )


def pushed(api: CfQueuesApi) -> list[Any]:
    return [m.body for m in api.queue(QUEUE).messages]


def body(job: Job, slot: datetime) -> dict[str, str]:
    return {"type": job.type, "scheduledFor": slot.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_a_slot_the_worker_never_sent_is_pushed_once_with_the_workers_body(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    job = hourly(within=3 * 3600)
    clock = FakeClock(T0 + HOUR + timedelta(seconds=GRACE))

    async def main() -> None:
        await succeed(pg_dsn, job.name, T0 - HOUR, T0 - 2 * HOUR)  # T0 was never sent
        async with reconciler(pg_dsn, api, make_manifest(job), clock) as r:
            first = await r.run_once()
            assert first == [Slot(job, T0), Slot(job, T0 + HOUR)]
            assert await r.run_once() == []
        rows = await sql(pg_dsn, "SELECT job, slot, source, transport FROM cronwright.dispatched")
        assert sorted(rows, key=lambda r: r["slot"]) == [
            {"job": job.name, "slot": s, "source": "reconciler", "transport": "cloudflare"}
            for s in (T0, T0 + HOUR)
        ]

    run(main())
    assert pushed(api) == [body(job, T0), body(job, T0 + HOUR)]
    (call,) = api.calls("/messages/batch")
    assert call.json == {
        "messages": [
            {"body": body(job, T0), "content_type": "json"},
            {"body": body(job, T0 + HOUR), "content_type": "json"},
        ]
    }


def test_a_slot_inside_its_grace_period_or_not_due_is_left_to_the_worker(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    job = hourly(within=3 * 3600)
    clock = FakeClock(T0 + timedelta(seconds=GRACE - 1))  # T0 is due, but only just

    async def main() -> None:
        await succeed(pg_dsn, job.name, T0 - HOUR, T0 - 2 * HOUR, T0 - 3 * HOUR)
        async with reconciler(pg_dsn, api, make_manifest(job), clock) as r:
            assert await r.run_once() == []
            clock.now = T0 + timedelta(seconds=GRACE)
            assert await r.run_once() == [Slot(job, T0)]

    run(main())
    assert pushed(api) == [body(job, T0)]


def test_two_reconcilers_at_once_still_push_each_slot_once(pg_dsn: str, api: CfQueuesApi) -> None:
    job = hourly(within=6 * 3600)
    clock = FakeClock(T0 + timedelta(seconds=GRACE))

    async def main() -> list[list[Slot]]:
        async with (
            reconciler(pg_dsn, api, make_manifest(job), clock) as a,
            reconciler(pg_dsn, api, make_manifest(job), clock) as b,
        ):
            return list(await asyncio.gather(a.run_once(), b.run_once()))

    first, second = run(main())
    expected = [T0 - k * HOUR for k in range(5, -1, -1)]  # 05:00 is the first within 6 h
    assert sorted(s.slot for s in first + second) == expected
    assert sorted(m["scheduledFor"] for m in pushed(api)) == [
        body(job, s)["scheduledFor"] for s in expected
    ]


def test_a_slot_inside_a_pause_is_never_pushed(pg_dsn: str, api: CfQueuesApi) -> None:
    job = hourly(within=4 * 3600)
    clock = FakeClock(T0 + timedelta(seconds=GRACE))

    async def main() -> None:
        await sql(
            pg_dsn,
            "INSERT INTO cronwright.pauses (job, paused_from, resumed_at, reason)"
            " VALUES ($1, $2, $3, 'maintenance')",
            job.name,
            T0 - 2 * HOUR - timedelta(minutes=30),
            T0 - HOUR + timedelta(minutes=1),
        )
        async with reconciler(pg_dsn, api, make_manifest(job), clock) as r:
            assert [s.slot for s in await r.run_once()] == [T0 - 3 * HOUR, T0]

    run(main())
    assert pushed(api) == [body(job, T0 - 3 * HOUR), body(job, T0)]


def test_a_job_paused_in_the_manifest_or_at_runtime_gets_nothing(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    in_manifest = replace(hourly(name="a"), paused=True)
    at_runtime = hourly(name="b")
    clock = FakeClock(T0 + timedelta(seconds=GRACE))

    async def main() -> None:
        await sql(
            pg_dsn,
            "INSERT INTO cronwright.pauses (job, paused_from) VALUES ('b', $1)",
            T0 - 48 * HOUR,
        )
        manifest = make_manifest(in_manifest, at_runtime)
        async with reconciler(pg_dsn, api, manifest, clock) as r:
            assert await r.run_once() == []

    run(main())
    assert pushed(api) == []


def test_a_slot_missed_while_the_flag_was_off_is_pushed_once_it_is_back_on_by_policy(
    pg_dsn: str, api: CfQueuesApi
) -> None:
    job = hourly(CatchUpPolicy.LATEST, within=6 * 3600)
    clock = FakeClock(T0 + timedelta(seconds=GRACE))

    async def main() -> None:
        await succeed(pg_dsn, job.name, T0 - 3 * HOUR)
        manifest = make_manifest(job)
        async with reconciler(pg_dsn, api, manifest, clock, {"ENABLE_CRON": "false"}) as r:
            assert await r.run_once() == []
        # The flag var is unset again: the manifest's default (on) holds.
        async with reconciler(pg_dsn, api, manifest, clock, {}) as r:
            assert await r.run_once() == [Slot(job, T0)]  # latest: only the newest

    run(main())
    assert pushed(api) == [body(job, T0)]


@pytest.mark.parametrize(
    ("policy", "within"),
    [
        (CatchUpPolicy.ALL, 3 * 3600),
        (CatchUpPolicy.ALL, 86_400),
        (CatchUpPolicy.LATEST, 3 * 3600),
        (CatchUpPolicy.NONE, 86_400),
    ],
)
def test_after_five_hours_stopped_each_policy_enqueues_what_it_promises(
    pg_dsn: str, api: CfQueuesApi, policy: CatchUpPolicy, within: int
) -> None:
    job = hourly(policy, within=within)
    restart = T0 + 5 * HOUR + timedelta(seconds=GRACE + 60)
    clock = FakeClock(restart)
    # The oracle: the hourly slots after T0 up to the restart minus the grace period,
    # those due within `within` seconds, then the policy's choice among them.
    candidates = [T0 + k * HOUR for k in range(1, 6)]
    due = [s for s in candidates if restart - timedelta(seconds=within) <= s]
    due = [s for s in due if s <= restart - timedelta(seconds=GRACE)]
    expected = {
        CatchUpPolicy.ALL: due,
        CatchUpPolicy.LATEST: due[-1:],
        CatchUpPolicy.NONE: [],
    }[policy]

    async def main() -> list[Slot]:
        await succeed(pg_dsn, job.name, *(T0 - k * HOUR for k in range(0, 30)))
        async with reconciler(pg_dsn, api, make_manifest(job), clock) as r:
            return await r.run_once()

    sent = run(main())
    assert [s.slot for s in sent] == expected
    assert pushed(api) == [body(job, s) for s in expected]
    assert all(s.slot >= restart - timedelta(seconds=within) for s in sent)


class CountingDb:
    """A Db that counts the statements its transactions run."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queries = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.db.transaction() as tx:
            outer = self

            class Counted:
                async def fetch(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
                    outer.queries += 1
                    return await tx.fetch(sql, *args, timeout=timeout)

            yield Counted()


def test_a_latest_jobs_slots_read_not_deployed_superseded_missing_and_pending(pg_dsn: str) -> None:
    job = hourly(CatchUpPolicy.LATEST)
    slots = [T0 + k * HOUR for k in range(5)]
    # History from T0 + 1h; T0 + 2h ran; the grace is an hour and it is T0 + 4h30.
    expected = [
        "not_deployed",  # before the history, though a newer slot ran
        "superseded",  # a newer slot ran: it will never run
        "succeeded",
        "missing",  # past the grace, and nothing newer was sent or ran
        "pending",  # inside the grace
    ]

    async def main() -> list[str]:
        await deploy(pg_dsn, make_manifest(job), at=T0 + HOUR)
        await sql(
            pg_dsn,
            "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
            " VALUES ($1, $2, 'succeeded', 1, $2)",
            job.name,
            slots[2],
        )
        async with Database.open(pg_dsn, max_size=1) as db:
            found = await scheduling.statuses(
                PgSlotStore(db), [(job, slots)], now=T0 + 4.5 * HOUR, grace=HOUR
            )
        return [s.status for s in found]

    assert run(main()) == expected


def test_every_status_of_a_slot_in_one_query_whatever_the_jobs_and_the_range(
    pg_dsn: str,
) -> None:
    job = hourly()
    slots = [T0 + k * HOUR for k in range(8)]
    # One slot per status, written independently of the implementation.
    expected = {
        slots[0]: ("succeeded", 1),
        slots[1]: ("failed", 2),
        slots[2]: ("dead_lettered", 5),
        slots[3]: ("running", 1),
        slots[4]: ("queued", 0),
        slots[5]: ("paused", 0),
        slots[6]: ("missing", 0),
        slots[7]: ("succeeded", 3),  # ran, then a pause covered it: it still ran
    }

    async def main() -> tuple[list[scheduling.SlotStatus], int]:
        await deploy(pg_dsn, make_manifest(job))
        for slot, (status, attempts) in expected.items():
            if status in ("succeeded", "failed", "dead_lettered", "running"):
                await sql(
                    pg_dsn,
                    "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
                    " VALUES ($1, $2, $3, $4, $2)",
                    job.name,
                    slot,
                    status,
                    attempts,
                )
        await sql(
            pg_dsn,
            "INSERT INTO cronwright.dispatched (job, slot, source, transport)"
            " VALUES ($1, $2, 'reconciler', 'cloudflare'), ($1, $3, 'reconciler', 'cloudflare')",
            job.name,
            slots[4],
            slots[0],
        )
        await sql(
            pg_dsn,
            "INSERT INTO cronwright.pauses (job, paused_from, resumed_at)"
            " VALUES ($1, $2, $3), ($1, $4, NULL)",
            job.name,
            slots[5],
            slots[5] + timedelta(minutes=1),
            slots[7],
        )
        async with Database.open(pg_dsn, max_size=1) as db:
            counting = CountingDb(db)
            store = PgSlotStore(counting)  # type: ignore[arg-type]
            now, grace = T0 + 9 * HOUR, timedelta(0)
            found = await scheduling.statuses(store, [(job, slots)], now=now, grace=grace)
            many = [replace(job, name=f"j{i}", type=f"t.j{i}") for i in range(50)]
            week = [T0 - k * HOUR for k in range(24 * 7)]
            await scheduling.statuses(store, [(j, week) for j in many], now=now, grace=grace)
            return found, counting.queries

    found, queries = run(main())
    assert {s.slot: (s.status, s.attempts) for s in found} == expected
    assert queries == 2  # each call: one, the history starts with every slot's facts


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
jobs:
  probe:
    type: test.probe
    cron: "0 * * * *"
    sql: sql/probe.sql
    window: {period: hour, offset: -1}
    catch_up: {policy: all, within_seconds: 10800}
"""


def cli(tmp_path: Path, dsn: str, api: CfQueuesApi, *args: str, **env: str) -> Any:
    (tmp_path / "sql").mkdir(exist_ok=True)
    (tmp_path / "sql" / "probe.sql").write_text("SELECT 1;\n")
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    environ |= {
        "DATABASE_URL": dsn,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_BASE_URL": api.url,
        **env,
    }
    manifest = str(tmp_path / "jobs.yaml")
    return subprocess.run(
        [sys.executable, "-m", "engine", "-m", manifest, *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_reconcile_json_prints_the_slots_it_enqueued_in_the_slots_line_format(
    tmp_path: Path, pg_dsn: str, api: CfQueuesApi
) -> None:
    api.create_queue("probe-jobs-dlq")
    now = datetime.now(UTC)
    latest = now.replace(minute=0, second=0, microsecond=0)
    if now - latest < timedelta(seconds=GRACE):
        latest -= HOUR
    # The oracle: hourly slots within the last 3 hours and past the grace period.
    due = [latest - k * HOUR for k in range(3, -1, -1)]
    due = [s for s in due if s >= now - timedelta(seconds=10_800)]
    iso = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in due]

    run(sql(pg_dsn, "INSERT INTO cronwright.jobs VALUES ('probe', $1)", now - 2 * HOUR * 24))
    dry = cli(tmp_path, pg_dsn, api, "reconcile", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [json.loads(line) for line in dry.stdout.splitlines()] == [
        {"job": "probe", "type": "test.probe", "slot": s, "status": "missing", "attempts": 0}
        for s in iso
    ]
    assert pushed(api) == []

    off = cli(tmp_path, pg_dsn, api, "reconcile", "--json", ENABLE_CRON="false")
    assert (off.returncode, off.stdout) == (0, "")
    assert off.stderr == (
        "the cron flag ENABLE_CRON is off: nothing enqueued (--include-disabled to look anyway)\n"
    )

    done = cli(tmp_path, pg_dsn, api, "reconcile", "--json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["queued"] * len(
        iso
    )
    assert [m["scheduledFor"] for m in pushed(api)] == iso

    shown = cli(
        tmp_path, pg_dsn, api, "slots", "probe", "--from", iso[0], "--to", iso[-1], "--json"
    )
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["status"] for line in shown.stdout.splitlines()] == ["queued"] * (
        len(iso) - 1
    )
    assert TOKEN not in dry.stdout + dry.stderr + done.stdout + done.stderr


def test_consume_with_a_reconcile_interval_pushes_the_missing_slot_and_runs_it(
    tmp_path: Path, pg_dsn: str, api: CfQueuesApi
) -> None:
    api.create_queue("probe-jobs-dlq")
    (tmp_path / "probe.sql").write_text("SELECT {{ window_start }}::timestamptz;\n")
    job = hourly(within=2 * 3600)  # its template is probe.sql beside the manifest
    manifest = make_manifest(job, path=str(tmp_path / "jobs.yaml"))
    clock = FakeClock(T0 + timedelta(seconds=GRACE))
    environ = {
        "DATABASE_URL": pg_dsn,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_BASE_URL": api.url,
    }

    async def idle(seconds: float) -> None:
        await asyncio.sleep(0.2)

    async def main() -> Any:
        await succeed(pg_dsn, job.name, T0 - HOUR)
        await deploy(pg_dsn, manifest)
        options = service.Options(
            transport="cloudflare", max_batches=4, reconcile_seconds=0.05, prune_seconds=None
        )
        tally = await service.run(
            manifest,
            options,
            environ=environ,
            metrics=Collect(),
            clock=clock,
            sleep=idle,
            handle_signals=False,
        )
        runs = await sql(pg_dsn, "SELECT slot, status FROM cronwright.runs ORDER BY slot")
        sent = await sql(pg_dsn, "SELECT slot, source FROM cronwright.dispatched")
        return tally, runs, sent

    tally, runs, sent = run(main())
    assert dict(tally.statuses) == {"succeeded": 1}
    assert runs == [
        {"slot": T0 - HOUR, "status": "succeeded"},
        {"slot": T0, "status": "succeeded"},
    ]
    assert sent == [{"slot": T0, "source": "reconciler"}]
    assert api.queue(QUEUE).messages == []
