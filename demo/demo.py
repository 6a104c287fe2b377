"""`make demo`: every job once against a throwaway PostgreSQL, through the real CLI.

Starts a server, runs `cronwright db migrate`, loads demo/seed.sql, runs each job for a
slot with `cronwright run`, replays one to show it is a duplicate, prints the ledger and
a few result rows, then stops the server. Warmup counters go to a local directory store
(set R2_* to use R2)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.pgserver import start, stop  # noqa: E402  (the throwaway server the tests use too)

COUNTERS = ROOT / ".cronwright" / "r2" / "mauntic-warmup-counters"

SLOTS = [
    ("analytics.aggregate-hourly", "2026-10-31T00:00:00Z"),
    ("analytics.warmup-daily-reset", "2026-10-31T00:00:00Z"),
    ("analytics.generate-daily-reports", "2026-10-31T02:00:00Z"),
    ("analytics.score-distribution", "2026-10-31T04:00:00Z"),
    ("analytics.enrichment-metrics", "2026-10-31T05:00:00Z"),
    ("analytics.monthly-usage-summary", "2026-11-01T03:00:00Z"),
]

QUERIES = {
    "daily rollup (analytics.event_aggregates, 2026-10-30, first 5)": (
        "SELECT left(organization_id::text, 8) AS org, event_type, count, unique_count "
        "FROM analytics.event_aggregates "
        "WHERE date = '2026-10-30' AND event_type NOT LIKE 'monthly:%' "
        "ORDER BY 1, 2 LIMIT 5"
    ),
    "campaign_daily_stats (first 3)": (
        "SELECT campaign_id, left(organization_id::text, 8) AS org, sent, delivered, opened, "
        "unique_opened, clicked, bounced FROM analytics.campaign_daily_stats ORDER BY 1, 2 LIMIT 3"
    ),
    "daily_score_distribution": (
        "SELECT left(organization_id::text, 8) AS org, date, avg_score, p50, p90, total_contacts "
        "FROM analytics.daily_score_distribution ORDER BY 1"
    ),
}


def cli(*args: str, env: dict[str, str], check: bool = True) -> None:
    print(f"$ cronwright {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"cronwright {args[0]} exited {done.returncode}")


async def sql(dsn: str, text: str) -> list[dict[str, object]]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        if text.lstrip().upper().startswith("SELECT"):
            return [dict(r) for r in await conn.fetch(text, timeout=30)]
        await conn.execute(text, timeout=60)
        return []
    finally:
        await conn.close(timeout=30)


def show(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n-- {title}")
    if not rows:
        print("(no rows)")
        return
    cols = list(rows[0])
    table = [cols] + [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


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


def counters_left() -> int:
    return sum(1 for p in (COUNTERS / "warmup" / "daily").rglob("*") if p.is_file())


def main() -> None:
    server = start()
    try:
        dsn = server.dsn("postgres")
        env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
        for key in ("R2_ENDPOINT_URL", "R2_ACCOUNT_ID"):
            env.pop(key, None)
        print(f"PostgreSQL on 127.0.0.1:{server.port}; warmup counters in .cronwright/r2/\n")
        cli("db", "migrate", env=env)
        asyncio.run(sql(dsn, (ROOT / "demo" / "seed.sql").read_text()))
        print("loaded demo/seed.sql")
        shutil.rmtree(COUNTERS, ignore_errors=True)
        n = asyncio.run(seed_counters(dsn))
        print(f"wrote {n} warmup counters dated 2026-10-30")
        print("(the reset clears those of verified domains created in the last 30 days)\n")
        for type_, at in SLOTS:
            cli("run", type_, "--at", at, env=env)
        print(f"warmup counters left after the reset: {counters_left()} of {n}")
        print("\nReplaying a slot that already succeeded:")
        cli("run", "analytics.aggregate-hourly", "--at", "2026-10-31T00:00:00Z", env=env)
        print()
        cli("runs", env=env)
        for title, query in QUERIES.items():
            show(title, asyncio.run(sql(dsn, query)))
    finally:
        stop(server)


if __name__ == "__main__":
    main()
