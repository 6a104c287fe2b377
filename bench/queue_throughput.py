"""Queue throughput, end to end: no-op jobs through scheduler -> Postgres queue ->
executor -> ledger (cronwright serve's path) with 1, 2 and 4 consumers, next to, in the
same run and on the same server:

- raw pgqueuer no-op jobs (it batches its completions);
- procrastinate no-op jobs;
- the executor alone (the same deliveries without the queue: the executor's share);
- the floor: one asyncpg transaction per job that claims a row with
  FOR UPDATE SKIP LOCKED and marks it done, 4 connections. Exactly-once needs at least
  one transaction per job, so this is the limit of the design.

It also prints the CPU per job of cronwright's runs and of the floor, the client
process's and the Postgres backends': on a loaded 2-core machine the throughput at 4
consumers follows CPU per job, not round trips. A job's transaction takes one round trip
(cronwright.run_slot: claim, statement, success and queue ack), plus a share of a claim
of several queue messages; the floor's takes four.

Goals at 4 consumers: >= 1x procrastinate, >= 0.5x the floor. pgqueuer and procrastinate
come from the ``bench`` extra (pip install -e '.[bench]'); a missing one is skipped.
Starts its own throwaway Postgres (fsync=off). Run from the repo root:

    .venv/bin/python -m bench.queue_throughput [--jobs 3000] [--rounds 5]

Every contender runs once per round, the rounds one after another, and the figures are
the medians over the rounds: on a shared 2-core machine one run of anything can be off by
a quarter. The goals' ratios are the medians of each round's own ratio (the two runs a
minute apart), with the ratio of the two medians printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from devtools import pgserver as postgres
from devtools.manifests import probe_manifest as make_manifest
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue, PgSender
from engine.app import observe
from engine.app.localconsumer import LocalConsumer, LocalSettings
from engine.app.scheduler import Scheduler
from engine.app.wiring import build_executor
from engine.core.model import Job, Overlap, Period, Window
from engine.core.times import iso
from engine.runtime.executor import Executor
from engine.runtime.slotstore import PgSlotStore

JOB = Job(
    name="noop",
    type="bench.noop",
    cron="* * * * *",
    sql="noop.sql",
    window=Window(period=Period.HOUR, offset=-1),
    overlap=Overlap.ALLOW,
)
MANIFEST = make_manifest(JOB)
START = datetime(2020, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def scratch_db(server: postgres.PgServer) -> AsyncIterator[str]:
    """A fresh database, dropped after its contender's run: what a run leaves to vacuum
    is not vacuumed by autovacuum in the middle of the next contender's timing."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    await postgres.admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield server.dsn(name)
    finally:
        await postgres.admin(server, f'DROP DATABASE "{name}" WITH (FORCE)')


def noop_executor(db: Database) -> Executor:
    """The executor every cronwright run of this bench uses: the no-op job, metrics into
    a Prometheus registry as serve keeps them."""
    return build_executor(
        db,
        MANIFEST,
        templates={"noop.sql": "SELECT 1"},
        metrics=observe.Metrics(MANIFEST),
        rng=random.Random(0),
    )


async def cronwright_e2e(dsn: str, jobs: int, consumers: int) -> float:
    """Seconds from the scheduler's tick to the last message acked."""
    await migrate_url(dsn, None)
    # Its connections open before the clock starts, as the floor's do.
    size = consumers + 3
    async with Database.open(dsn, min_size=size, max_size=size, session_reset=False) as db:
        executor = noop_executor(db)
        queue = PgQueue(db, MANIFEST.queue.name, clock=utc_now)
        scheduler = Scheduler(
            db=db,
            store=PgSlotStore(db),
            manifest=MANIFEST,
            sender=PgSender(queue.name, clock=utc_now),
            clock=utc_now,
            sleep=asyncio.sleep,
            environ={},
        )
        consumer = LocalConsumer(
            queue=queue,
            executor=executor,
            settings=LocalSettings(consumers=consumers, idle_seconds=0.05),
            max_messages=jobs,
        )
        t0 = time.perf_counter()
        # As in serve, the consumers run beside the scheduler: they start on the tick's
        # first batch of messages while it enqueues the rest.
        ticking = asyncio.create_task(
            scheduler.tick(START - timedelta(minutes=1), START + timedelta(minutes=jobs - 1))
        )

        def stop_if_failed(task: asyncio.Task[object]) -> None:
            if not task.cancelled() and task.exception() is not None:
                consumer.stop()  # then the tick's error is raised below

        ticking.add_done_callback(stop_if_failed)
        tally = await consumer.run()
        elapsed = time.perf_counter() - t0
        assert len(await ticking) == jobs
        assert tally.statuses["succeeded"] == jobs, tally.summary()
        done = await db.fetch(
            "SELECT count(*) AS n FROM cronwright.runs WHERE status = 'succeeded'"
        )
        assert done[0]["n"] == jobs
    return elapsed


async def executor_alone(dsn: str, jobs: int, concurrency: int = 4) -> float:
    """The executor's share: the same no-op deliveries handed straight to it, no queue."""
    await migrate_url(dsn, None)
    async with Database.open(dsn, max_size=concurrency + 2, session_reset=False) as db:
        executor = noop_executor(db)
        bodies = iter(
            json.dumps({"type": JOB.type, "scheduledFor": iso(START + timedelta(minutes=i))})
            for i in range(jobs)
        )

        async def worker() -> None:
            for i, body in enumerate(bodies):
                await executor.handle(body, message_id=f"m{i}", attempt=1)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def floor(dsn: str, jobs: int, connections: int = 4) -> float:
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE floor (id bigint PRIMARY KEY, done boolean NOT NULL DEFAULT false);"
        "CREATE INDEX floor_todo ON floor (id) WHERE NOT done;"
    )
    await conn.execute("INSERT INTO floor (id) SELECT generate_series(1, $1)", jobs)
    await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)

    async def worker() -> None:
        async with pool.acquire() as c:
            while True:
                async with c.transaction():
                    row = await c.fetchrow(
                        "SELECT id FROM floor WHERE NOT done ORDER BY id LIMIT 1"
                        " FOR UPDATE SKIP LOCKED"
                    )
                    if row is None:
                        return
                    await c.execute("UPDATE floor SET done = true WHERE id = $1", row["id"])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    await pool.close()
    return elapsed


async def pgqueuer_noop(dsn: str, jobs: int) -> float:
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    conn = await asyncpg.connect(dsn)
    try:
        driver = AsyncpgDriver(conn)
        queries = Queries(driver)
        await queries.install()
        await queries.enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)
        qm = QueueManager(queries)

        @qm.entrypoint("noop")
        async def noop(job: object) -> None:
            return None

        t0 = time.perf_counter()
        await qm.run(mode=QueueExecutionMode.drain, batch_size=10)
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def procrastinate_noop(dsn: str, jobs: int, concurrency: int = 4) -> float:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await noop.batch_defer_async(*([{}] * jobs))
        t0 = time.perf_counter()
        await app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False
        )
        elapsed = time.perf_counter() - t0
    return elapsed


def server_cpu(server: postgres.PgServer) -> float | None:
    """CPU seconds of the server's finished backends (the postmaster's reaped children),
    where /proc tells: with 2 cores shared, CPU per job, not wall time, is what a
    faster path has to cut."""
    try:
        pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


async def costed(
    server: postgres.PgServer, dsn: str, run: Callable[[str], Awaitable[float]]
) -> tuple[float, float, float | None]:
    """(seconds, client CPU seconds, server CPU seconds) of ``run`` on the fresh database
    ``dsn``; the CPU includes its setup (migrations)."""
    pg0, py0 = server_cpu(server), time.process_time()
    secs = await run(dsn)
    py = time.process_time() - py0
    await asyncio.sleep(0.5)  # the closed connections' backends exit and are reaped
    pg1 = server_cpu(server)
    return secs, py, (pg1 - pg0) if pg0 is not None and pg1 is not None else None


FLOOR = "floor (1 tx per job, 4 connections)"
OURS = "cronwright, 4 consumers"
PROCRASTINATE = "procrastinate (concurrency 4)"


async def one_round(
    server: postgres.PgServer,
    jobs: int,
    rates: dict[str, list[float]],
    cpu: dict[str, list[tuple[float, float | None]]],
) -> None:
    """Every contender once, each on a fresh database of the same server."""

    async def timed(name: str, run: Callable[[str], Awaitable[float]], costs: bool) -> None:
        async with scratch_db(server) as dsn:
            if costs:
                secs, py, pg = await costed(server, dsn, run)
                cpu.setdefault(name, []).append((py, pg))
            else:
                secs = await run(dsn)
        rates.setdefault(name, []).append(jobs / secs)

    for n in (1, 2, 4):
        name = f"cronwright, {n} consumer{'s' * (n > 1)}"
        await timed(name, lambda dsn, n=n: cronwright_e2e(dsn, jobs, n), True)
    await timed("executor alone, no queue (4 concurrent)", lambda d: executor_alone(d, jobs), False)
    await timed(FLOOR, lambda dsn: floor(dsn, jobs), True)
    if importlib.util.find_spec("pgqueuer"):
        await timed("pgqueuer (raw, batched completions)", lambda d: pgqueuer_noop(d, jobs), False)
    if importlib.util.find_spec("procrastinate"):
        await timed(PROCRASTINATE, lambda d: procrastinate_noop(d, jobs), False)


async def main(jobs: int, rounds: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    for package in ("pgqueuer", "procrastinate"):
        if not importlib.util.find_spec(package):
            print(f"{package} not installed (pip install -e '.[bench]'): skipped")
    server = postgres.start(settings={"fsync": "off", "max_connections": "100"})
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[tuple[float, float | None]]] = {}
    try:
        for _ in range(rounds):
            await one_round(server, jobs, rates, cpu)
    finally:
        with contextlib.suppress(postgres.PostgresUnavailable):
            postgres.stop(server)
    med = {name: statistics.median(r) for name, r in rates.items()}
    ours = med[OURS]
    print(
        f"\nno-op jobs end to end, {jobs} jobs per run, {rounds} rounds (each runs every"
        " contender once, in turn); jobs/s: median (range); ratio: cronwright@4 / it"
    )
    for name, rate in med.items():
        low, high = min(rates[name]), max(rates[name])
        print(f"  {name:42} {rate:8.0f}/s ({low:.0f}-{high:.0f})   {ours / rate:5.2f}x")
    print("\nCPU per job, ms, median of the rounds (client process / Postgres backends)")
    for name, costs in cpu.items():
        py = statistics.median(c[0] for c in costs)
        pgs = [c[1] for c in costs if c[1] is not None]
        server_ms = f"{statistics.median(pgs) / jobs * 1000:6.3f}" if pgs else "     ?"
        print(f"  {name:42} {py / jobs * 1000:6.3f} / {server_ms}")
    print()
    for name, goal in ((FLOOR, 0.5), (PROCRASTINATE, 1.0)):
        if name in rates:
            paired(name, goal, rates[OURS], rates[name])


def paired(name: str, goal: float, ours: list[float], theirs: list[float]) -> None:
    """The goal's ratio as the median of the rounds' own ratios: each round runs the two
    within a minute of each other, so a machine that slows down for a while slows both,
    where the ratio of the two medians can take them from different rounds."""
    ratios = [o / t for o, t in zip(ours, theirs, strict=True)]
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    print(
        f"goal: >= {goal:g}x {name}: {statistics.median(ratios):.2f}x, the median of the"
        f" rounds' ratios ({rounds}); ratio of the medians"
        f" {statistics.median(ours) / statistics.median(theirs):.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.rounds))
