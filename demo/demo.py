"""`make demo`: the whole loop without Cloudflare, on a throwaway PostgreSQL, in under a
minute.

It starts a server, runs `cronwright db migrate`, loads a synthetic day (demo/seed.sql)
and warmup counters in the local store, then runs 30 simulated hours (2026-10-31 00:00
to 2026-11-01 06:00, so every job fires, the monthly one included) through the real
path: one `serve` process (the scheduler and 2 consumers) and two consumer processes on
the Postgres queue, all on one accelerated clock. Along the way it injects a transient
failure (retried), a poison message (dead-lettered) and SIGKILLs a consumer process
(its messages come back when their leases run out). It ends with a summary checked
against the schedule (counted with croniter, not cronwright's own cron code) and stops
the server. Set R2_* to use R2 instead of the local store.

`python demo/demo.py --role serve|consume START_FILE` is one of the child processes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.pgserver import start, stop  # noqa: E402  (the throwaway server the tests use too)
from devtools.simclock import SimClock  # noqa: E402

COUNTERS = ROOT / ".cronwright" / "r2" / "mauntic-warmup-counters"
SIM_START = datetime(2026, 10, 30, 23, 59, tzinfo=UTC)
SIM_END = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
SPEED = 6000.0  # simulated seconds per real second: 30 hours in 18 s
POISON = '{"type":"analytics.aggregate-hourlyy","scheduledFor":"2026-10-31T07:00:00Z"}'

# The transient failure: the first statement that writes campaign stats fails with a
# serialization failure (the sequence survives the rollback), and the retry succeeds.
FAULT_SQL = """
CREATE SCHEMA demo;
CREATE SEQUENCE demo.faults;
CREATE FUNCTION demo.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('demo.faults') = 1 THEN
        RAISE EXCEPTION 'demo: injected conflict' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER demo_fail_once BEFORE INSERT ON analytics.campaign_daily_stats
    FOR EACH STATEMENT EXECUTE FUNCTION demo.fail_once();
"""
# A slow run to kill: the 25th write of the hourly rollup (about 12:00) sleeps 1.5 s of
# real time, so the conductor can SIGKILL whichever process runs it, mid-transaction.
SLOW_SQL = """
CREATE SEQUENCE demo.hourly_runs;
CREATE FUNCTION demo.slow_noon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('demo.hourly_runs') = 25 THEN
        PERFORM pg_sleep(1.5);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER demo_slow_noon BEFORE INSERT ON analytics.event_aggregates
    FOR EACH STATEMENT EXECUTE FUNCTION demo.slow_noon();
"""
SLEEPER = """
SELECT application_name FROM pg_stat_activity
WHERE wait_event = 'PgSleep' AND application_name LIKE 'demo-%'
"""


# -- the accelerated clock, shared by every process through the start file ---------------


def sim_clock(start_file: Path) -> SimClock:
    """SIM_START until the conductor writes the real start time into ``start_file``, then
    SPEED times faster than real time."""
    return SimClock(SIM_START, SPEED, start_file)


def child(role: str, start_file: Path) -> None:
    """One serve (scheduler + consumers) or consume process on the simulated clock."""
    import logging

    from engine.app.service import Options, run
    from engine.manifest import load
    from engine.runtime.metrics import Collect

    logging.basicConfig(level=logging.ERROR)
    manifest = load(str(ROOT / "jobs.yaml"))
    options = Options(
        transport="postgres",
        consumers=2,
        scheduler=role == "serve",
        metrics_port=0 if role == "serve" else None,
        metrics_refresh_seconds=0.05,
        lease_seconds=1800,  # simulated: 0.3 s of real time
        heartbeat_seconds=0.1,
        drain_seconds=5,
        reconcile_seconds=0.5,
    )
    clock = sim_clock(start_file)

    def started(port: int | None) -> None:
        print(f"ready {port or ''}", flush=True)

    asyncio.run(
        run(manifest, options, clock=clock, sleep=clock.sleep, metrics=Collect(), started=started)
    )


# -- the conductor -----------------------------------------------------------------------


def cli(*args: str, env: dict[str, str]) -> None:
    print(f"$ cronwright {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cronwright {args[0]} exited {done.returncode}")


async def sql(dsn: str, text: str, *args: Any) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        if text.lstrip().upper().startswith(("SELECT", "WITH")):
            return [dict(r) for r in await conn.fetch(text, *args, timeout=30)]
        await conn.execute(text, *args, timeout=60)
        return []
    finally:
        await conn.close(timeout=30)


async def seed_counters(dsn: str) -> int:
    """Yesterday's sends for every domain, so the midnight reset has counters to clear."""
    from datetime import UTC, datetime

    from engine.adapters.localstore import LocalDirectoryStore

    rows = await sql(dsn, "SELECT organization_id, domain FROM delivery.sending_domains")
    store = LocalDirectoryStore(COUNTERS, clock=lambda: datetime(2026, 10, 30, 18, tzinfo=UTC))
    async with store:
        for r in rows:
            await store.increment(str(r["organization_id"]), str(r["domain"]), 40)
    return len(rows)


def spawn(name: str, start_file: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start a child; its connections carry ``name`` as application_name."""
    role = name.split("-")[1]
    env = {**env, "DATABASE_URL": f"{env['DATABASE_URL']}?application_name={name}"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "demo" / "demo.py"), "--role", role, str(start_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit(f"the {role} process did not start")
    return proc, line[1] if len(line) > 1 else ""


def expected_slots() -> dict[str, int]:
    """Each job's slots in (SIM_START, SIM_END], counted with croniter."""
    from croniter import croniter

    from engine.manifest import load

    out = {}
    for job in load(str(ROOT / "jobs.yaml")).jobs:
        it, n = croniter(job.cron, SIM_START), 0
        while it.get_next(datetime) <= SIM_END:
            n += 1
        out[job.name] = n
    return out


def scrape(port: str) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text: str = r.read().decode()
    runs, ages = "cronwright_runs_total", "cronwright_oldest_missing_slot_age_seconds"
    return [  # every job's run counters exist from start-up: show those that counted
        line
        for line in text.splitlines()
        if line.startswith(ages) or (line.startswith(runs) and not line.endswith(" 0.0"))
    ]


def main() -> None:
    wall_started = time.monotonic()
    server = start()
    start_file = Path(tempfile.mkdtemp(prefix="cronwright-demo-")) / "wall0"
    procs: list[subprocess.Popen[str]] = []
    try:
        dsn = server.dsn("postgres")
        env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
        for key in ("R2_ENDPOINT_URL", "R2_ACCOUNT_ID", "ENABLE_ANALYTICS_CRON"):
            env.pop(key, None)
        print(f"PostgreSQL on 127.0.0.1:{server.port}; warmup counters in .cronwright/r2/\n")
        cli("db", "migrate", env=env)
        asyncio.run(sql(dsn, (ROOT / "demo" / "seed.sql").read_text()))
        shutil.rmtree(COUNTERS, ignore_errors=True)
        n_counters = asyncio.run(seed_counters(dsn))
        asyncio.run(sql(dsn, FAULT_SQL))
        asyncio.run(sql(dsn, SLOW_SQL))
        print(f"loaded demo/seed.sql and {n_counters} warmup counters dated 2026-10-30")
        print("injected: one transient failure of the first campaign-stats write, and a")
        print("slow hourly rollup (1.5 s) to SIGKILL its process in the middle of it\n")

        clock = sim_clock(start_file)
        named: dict[str, tuple[subprocess.Popen[str], str]] = {}
        for name in ("demo-serve-1", "demo-serve-2", "demo-consume-1"):
            named[name] = spawn(name, start_file, env)
            procs.append(named[name][0])
        clock.go()
        print("2 serve processes (scheduler + 2 consumers each) and 1 consumer process")
        print(f"simulating {SIM_START:%Y-%m-%d %H:%M} .. {SIM_END:%Y-%m-%d %H:%M} UTC"
              f" at {SPEED:.0f}x")  # fmt: skip
        asyncio.run(put_poison(dsn, clock))
        print(f"enqueued a poison message: {POISON}")

        while not (sleeping := asyncio.run(sql(dsn, SLEEPER))):
            time.sleep(0.02)
            if time.monotonic() - wall_started > 90:
                raise SystemExit("the slow run never started")
        name = sleeping[0]["application_name"]
        victim = named[name][0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        print(f"{clock():%m-%d %H:%M} SIGKILL {name} (pid {victim.pid}) in the middle of an"
              " hourly rollup; starting a replacement")  # fmt: skip
        prefix = name.rsplit("-", 1)[0]
        again = f"{prefix}-{1 + sum(k.startswith(prefix) for k in named)}"
        named[again] = spawn(again, start_file, env)
        procs.append(named[again][0])

        while clock() < SIM_END + timedelta(minutes=30) or asyncio.run(
            sql(dsn, "SELECT 1 FROM cronwright.queue LIMIT 1")
        ):
            time.sleep(0.1)
            if time.monotonic() - wall_started > 120:
                raise SystemExit("the simulated day did not finish in 120 s")
        port = next(p for proc, p in named.values() if p and proc.poll() is None)
        metrics = scrape(port)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs if p is not victim]
        print(f"SIGTERM to every process: exit codes {codes}\n")
        left = sum(1 for p in (COUNTERS / "warmup" / "daily").rglob("*") if p.is_file())
        print(f"warmup counters in the local store after the resets: {left} of {n_counters}")
        summary(dsn, metrics, time.monotonic() - wall_started)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=30)
        stop(server)
        shutil.rmtree(start_file.parent, ignore_errors=True)


async def put_poison(dsn: str, clock: Any) -> None:
    from engine.adapters.pg import Database
    from engine.adapters.pgqueue import PgQueue

    async with Database.open(dsn, max_size=1) as db:
        await PgQueue(db, "mauntic-analytics-jobs", clock=clock).put_raw([POISON])


def summary(dsn: str, metrics: list[str], wall: float) -> None:
    from datetime import timedelta as td

    from engine.adapters.pg import Database
    from engine.manifest import load
    from engine.runtime.slotbook import SlotBook
    from engine.runtime.slotstore import PgSlotStore

    runs = asyncio.run(sql(dsn, "SELECT job, count(*) AS runs, sum(rows) AS rows,"
                                " sum(attempt - 1) AS retries FROM cronwright.runs WHERE"
                                " status = 'succeeded' GROUP BY job ORDER BY job"))  # fmt: skip
    letters = asyncio.run(sql(dsn, "SELECT error_class, reason FROM cronwright.dead_letters"))
    again = asyncio.run(sql(dsn, "SELECT job, slot, attempt FROM cronwright.runs"
                                 " WHERE attempt > 1 ORDER BY slot, job"))  # fmt: skip

    async def missing() -> int:
        """The scheduling core's count, the one the gauges report."""
        jobs = load(str(ROOT / "jobs.yaml")).jobs
        async with Database.open(dsn, max_size=1) as db:
            book = SlotBook(PgSlotStore(db), jobs, grace=td(0), register=False)
            await book.refresh(SIM_END)
        return sum(len(book.missing(job)) for job in jobs)

    expected = expected_slots()
    print(f"{'job':24} {'runs':>5} {'due':>5} {'rows':>7} {'retries':>8}")
    for r in runs:
        print(f"{r['job']:24} {r['runs']:>5} {expected[r['job']]:>5} {r['rows']:>7}"
              f" {r['retries']:>8}")  # fmt: skip
    for r in again:
        print(f"  delivered more than once: {r['job']} {r['slot']:%m-%d %H:%M} (attempt"
              f" {r['attempt']}: a retry, or a redelivery after the SIGKILL)")  # fmt: skip
    for d in letters:
        print(f"dead letter: {d['error_class']}: {d['reason']}")
    lost = asyncio.run(missing())
    done = {r["job"]: r["runs"] for r in runs}
    ok = done == expected and lost == 0 and len(letters) == 1
    print(f"missing slots: {lost}")
    print("\nfrom a serve process's /metrics (its own runs; the gauges cover every process):")
    for line in metrics:
        print(f"  {line}")
    print(f"\nwall time {wall:.1f} s; every due slot ran exactly once: {'yes' if ok else 'NO'}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--role":
        child(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
