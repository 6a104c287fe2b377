"""A project and a database that hold every slot status, for the web console's browser
tests and its screenshot (``python -m devtools.console_screenshot``).

The rows are written as the runtime would have left them: ledger rows with their run
history, dispatch claims, a pause with its history, a dead letter, and each job's first
sighting at a known time. Times are relative to ``now`` (a whole minute), so the grid of
the last hours shows, with the ``cloudflare`` transport's grace:

- ``minutely`` (every minute): succeeded, failed, dead_lettered, running, queued,
  paused, missing, and pending for the last ten minutes;
- ``refresh`` (every 5 minutes, ``catch_up: latest``): superseded slots (older than one
  that was sent, never run) beside succeeded ones;
- ``hourly-paris`` (hourly, Europe/Paris, windowed): succeeded, one failed;
- ``quarterly`` (every 15 minutes): not_deployed before its first sighting an hour ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

MANIFEST = """\
version: 1
name: console-demo
worker: {name: console-demo, cron_flag: CONSOLE_DEMO_CRON}
jobs:
  minutely:
    cron: "* * * * *"
    sql: sql/touch.sql
    retry: {max_attempts: 3}
  refresh:
    cron: "*/5 * * * *"
    sql: sql/touch.sql
    catch_up: {policy: latest}
  hourly-paris:
    cron: "0 * * * *"
    timezone: Europe/Paris
    sql: sql/window.sql
    window: {period: hour, offset: -1}
  quarterly:
    cron: "*/15 * * * *"
    sql: sql/touch.sql
"""
TEMPLATES = {
    "touch.sql": "SELECT {{ slot }}::timestamptz AS slot;\n",
    "window.sql": (
        "SELECT count(*) FROM generate_series({{ window_start }}::timestamptz,\n"
        "    {{ window_end }}::timestamptz, interval '1 minute');\n"
    ),
}
MINUTE = timedelta(minutes=1)


def write_project(root: Path) -> Path:
    """The project's files under ``root``; returns its manifest."""
    (root / "sql").mkdir(parents=True, exist_ok=True)
    for name, text in TEMPLATES.items():
        (root / "sql" / name).write_text(text)
    (root / "jobs.yaml").write_text(MANIFEST)
    return root / "jobs.yaml"


@dataclass(frozen=True)
class Seeded:
    """Slots the tests act on and look for."""

    now: datetime
    start: datetime  # the first slot seeded (3 hours back)
    missing: datetime  # a missing slot of `minutely`
    succeeded: datetime  # a succeeded slot of `minutely`
    failed: datetime  # `minutely`'s failed slot (two attempts)
    dead_lettered: datetime  # `minutely`'s dead-lettered slot
    dead_letter: int  # the id of its dead letter
    flips: datetime  # a missing slot of `minutely` for the refresh test to fill


@dataclass
class _Rows:
    runs: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    dispatched: list[tuple[str, datetime]]
    run_id: int = 0

    def ran(
        self,
        job: str,
        slot: datetime,
        status: str,
        attempt: int = 1,
        *,
        error: tuple[str, str] | None = None,
    ) -> None:
        """A slot's finished attempts up to ``attempt``, the last one ``status``."""
        for n in range(1, attempt + 1):
            self.run_id += 1
            final = n == attempt
            state = status if final else "failed"
            err = error if state != "succeeded" else None
            row = (
                self.run_id, job, slot, state, n,
                3 if state == "succeeded" else None,  # rows
                12.5 + n,  # duration_ms
                err[0] if err else None,
                err[1] if err else None,
                f"demo-{job}-{slot:%H%M}-{n}",
                slot + timedelta(seconds=2 + 30 * (n - 1)),
                slot + timedelta(seconds=3 + 30 * (n - 1)),
            )  # fmt: skip
            self.history.append(row)
            if final:
                self.runs.append(row)


_TRANSIENT = ("serialization_failure", "40001: could not serialize access (simulated)")
_PERMANENT = ("undefined_table", '42P01: relation "demo.missing" does not exist')


async def seed(dsn: str, now: datetime) -> Seeded:
    """Write the rows; ``now``: a whole minute, the time the grid is looked at."""
    from engine.adapters.pg import Database

    start = now - timedelta(hours=3)
    rows = _Rows(runs=[], history=[], dispatched=[])
    minutes = [start + k * MINUTE for k in range(int((now - start) / MINUTE) + 1)]
    special = {
        now - 100 * MINUTE: "failed",
        now - 90 * MINUTE: "dead_lettered",
        now - 12 * MINUTE: "running",
    }
    paused = (now - 120 * MINUTE, now - 110 * MINUTE)
    missing = [now - k * MINUTE for k in range(60, 44, -1)]  # a quarter hour lost
    queued = [now - k * MINUTE for k in (14, 13, 11)]
    for t in minutes:
        if t > now - 11 * MINUTE:  # the last ten minutes: pending (the Worker's grace)
            continue
        if t in special:
            status = special[t]
            if status == "running":
                rows.runs.append(
                    (None, "minutely", t, "running", 1, None, None, None, None,
                     "demo-running", t + timedelta(seconds=1), None)
                )  # fmt: skip
            elif status == "failed":
                rows.ran("minutely", t, "failed", 2, error=_TRANSIENT)
            else:
                rows.ran("minutely", t, "dead_lettered", 1, error=_PERMANENT)
        elif paused[0] <= t < paused[1] or t in missing:
            continue
        elif t in queued:
            rows.dispatched.append(("minutely", t))
        else:
            rows.ran("minutely", t, "succeeded", 2 if t.minute % 17 == 0 else 1)
    for t in minutes:
        if t.minute % 5:
            continue
        if now - 50 * MINUTE <= t <= now - 20 * MINUTE:
            continue  # never sent: superseded by the newer slot sent below
        if t == now - 15 * MINUTE:
            rows.dispatched.append(("refresh", t))
        elif t < now - 15 * MINUTE:
            rows.ran("refresh", t, "succeeded")
    day = now - timedelta(hours=26)
    hours = [day.replace(minute=0) + timedelta(hours=k) for k in range(1, 27)]
    for t in hours:
        if t <= now - 11 * MINUTE:
            rows.ran("hourly-paris", t, "failed" if t.hour == 7 else "succeeded")
    first_quarter = now - timedelta(hours=1)
    for t in minutes:
        if t.minute % 15 == 0 and first_quarter <= t <= now - 11 * MINUTE:
            rows.ran("quarterly", t, "succeeded")
    letter_slot = now - 90 * MINUTE
    async with Database.open(dsn, max_size=1) as db, db.transaction() as tx:
        await tx.execute(
            "INSERT INTO cronwright.jobs (job, first_seen) VALUES"
            " ('minutely', $1), ('refresh', $1), ('hourly-paris', $2), ('quarterly', $3)",
            start,
            day,
            first_quarter,
        )
        await tx.execute(
            "INSERT INTO cronwright.run_history (run_id, job, slot, status, attempt, rows,"
            " duration_ms, error_class, error, message_id, started_at, finished_at)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[],"
            " $5::int[], $6::bigint[], $7::float8[], $8::text[], $9::text[], $10::text[],"
            " $11::timestamptz[], $12::timestamptz[])",
            *zip(*rows.history, strict=True),
        )
        await tx.execute(
            "INSERT INTO cronwright.runs (run_id, job, slot, status, attempt, rows,"
            " duration_ms, error_class, error, message_id, started_at, finished_at)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[],"
            " $5::int[], $6::bigint[], $7::float8[], $8::text[], $9::text[], $10::text[],"
            " $11::timestamptz[], $12::timestamptz[])",
            *zip(*rows.runs, strict=True),
        )
        await tx.execute("SELECT setval('cronwright.run_ids', $1)", rows.run_id)
        await tx.execute(
            "INSERT INTO cronwright.dispatched (job, slot, source, transport)"
            " SELECT j, s, 'reconciler', 'cloudflare' FROM unnest($1::text[], $2::timestamptz[])"
            " AS u(j, s)",
            [j for j, _ in rows.dispatched],
            [s for _, s in rows.dispatched],
        )
        await tx.execute(
            "INSERT INTO cronwright.pauses (job, paused_from, resumed_at, reason, paused_by,"
            " resumed_by) VALUES ('minutely', $1, $2, 'db upgrade', 'cli:ops', 'cli:ops')",
            *paused,
        )
        letter = await tx.fetchrow(
            "INSERT INTO cronwright.dead_letters (job, type, slot, message_id, body, reason,"
            " error_class, attempts, created_at) VALUES ('minutely', 'minutely', $1,"
            " 'demo-letter', $2, $3, 'undefined_table', 1, $4) RETURNING id",
            letter_slot,
            f'{{"type":"minutely","scheduledFor":"{letter_slot:%Y-%m-%dT%H:%M:%SZ}"}}',
            _PERMANENT[1],
            letter_slot + timedelta(seconds=3),
        )
    assert letter is not None
    return Seeded(
        now=now,
        start=start,
        missing=missing[0],
        succeeded=now - 30 * MINUTE,
        failed=now - 100 * MINUTE,
        dead_lettered=letter_slot,
        dead_letter=int(letter["id"]),
        flips=missing[-1],
    )
