"""Helpers for the job SQL tests: the jobs from jobs.yaml, a tiny runner (render,
split, one transaction), seeding with COPY, and table snapshots."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from devtools.events import EVENT_COLUMNS
from engine import manifest
from engine.core.model import Job
from engine.sql import sqltemplates

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0

# Every table a job writes, keyed for a stable snapshot.
OUTPUT_TABLES = {
    "analytics.event_aggregates": "organization_id, date, event_type, channel",
    "analytics.event_rollup_days": "date",
    "analytics.campaign_daily_stats": "campaign_id, organization_id, date",
    "analytics.daily_score_distribution": "organization_id, date",
    "analytics.enrichment_metrics": "organization_id, date",
}


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def naive(t: datetime) -> datetime:
    """The source tables store UTC as ``timestamp`` without a zone."""
    return t.astimezone(UTC).replace(tzinfo=None)


def job(name: str) -> Job:
    found = manifest.load(ROOT / "jobs.yaml").job_by_name(name)
    assert found is not None, name
    return found


def statements(j: Job, slot: datetime, source: str | None = None) -> list[sqltemplates.Rendered]:
    text = source if source is not None else (ROOT / j.template).read_text()
    return sqltemplates.split_statements(sqltemplates.render(j, text, slot))


async def run_in(conn: asyncpg.Connection, j: Job, slot: datetime) -> list[Any]:
    """One run of the job's SQL in one transaction (what the executor does, less its
    ledger): the warmup query returns its rows, other jobs their command tags."""
    async with conn.transaction():
        return await _statements(conn, j, slot)


async def _statements(conn: asyncpg.Connection, j: Job, slot: datetime) -> list[Any]:
    out: list[Any] = []
    for st in statements(j, slot):
        if st.sql.lstrip().upper().startswith("SELECT"):
            out = list(await conn.fetch(st.sql, *st.args, timeout=TIMEOUT))
        else:
            out.append(await conn.execute(st.sql, *st.args, timeout=TIMEOUT))
    return out


async def run(dsn: str, j: Job, *slots: datetime) -> list[Any]:
    conn = await connect(dsn)
    try:
        out: list[Any] = []
        for slot in slots:
            out = await run_in(conn, j, slot)
        return out
    finally:
        await conn.close(timeout=TIMEOUT)


async def run_concurrently(dsn: str, runs: Sequence[tuple[Job, datetime]]) -> list[list[Any]]:
    """Each run on its own connection and in its own transaction, all started before
    any of them runs its SQL, so that they really overlap. Returns each run's result
    (see ``run_in``)."""
    conns = [await connect(dsn) for _ in runs]
    begun = asyncio.Barrier(len(runs))

    async def one(conn: asyncpg.Connection, j: Job, slot: datetime) -> list[Any]:
        async with conn.transaction():
            await conn.execute("SELECT 1", timeout=TIMEOUT)
            await begun.wait()
            return await _statements(conn, j, slot)

    try:
        return list(
            await asyncio.gather(*(one(c, j, s) for c, (j, s) in zip(conns, runs, strict=True)))
        )
    finally:
        for conn in conns:
            await conn.close(timeout=TIMEOUT)


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=TIMEOUT)


async def copy(dsn: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    schema, name = table.split(".")
    conn = await connect(dsn)
    try:
        await conn.copy_records_to_table(
            name, schema_name=schema, columns=list(columns), records=list(rows), timeout=TIMEOUT
        )
    finally:
        await conn.close(timeout=TIMEOUT)


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await connect(dsn)
    try:
        return list(await conn.fetch(sql, *args, timeout=TIMEOUT))
    finally:
        await conn.close(timeout=TIMEOUT)


async def snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every output table, ordered by its key."""
    conn = await connect(dsn)
    try:
        return {
            table: [
                tuple(r)
                for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}", timeout=TIMEOUT)
            ]
            for table, key in OUTPUT_TABLES.items()
        }
    finally:
        await conn.close(timeout=TIMEOUT)


@dataclass(frozen=True)
class Event:
    organization_id: UUID
    contact_id: UUID
    event_type: str
    event_source: str | None
    created_at: datetime  # naive UTC

    def row(self) -> tuple[Any, ...]:
        return (
            uuid.uuid4(),
            self.organization_id,
            self.contact_id,
            self.event_type,
            self.event_source,
            '{"seed": true}',
            self.created_at,
        )


async def seed_events(dsn: str, events: Sequence[Event]) -> None:
    await copy(dsn, "analytics.contact_activity", EVENT_COLUMNS, (e.row() for e in events))


def money(value: Decimal, places: str) -> Decimal:
    """PostgreSQL's round(numeric, n): half away from zero."""
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)
