"""Replays of every job on real PostgreSQL: a second run, and three concurrent runs
(separate connections, each in its own transaction, no executor lock), leave exactly
the tables one run leaves. Parameters travel as data, never as SQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType

import asyncpg
import pytest

from engine.core.model import Job, Period, Window
from tests.fixtures.aio import run
from tests.integration import job_data as data
from tests.integration import jobs_support as js

pytestmark = pytest.mark.postgres

# (job, slot, the table its run must fill)
CASES = [
    ("aggregate-hourly", js.utc(2026, 10, 30, 10), "analytics.event_aggregates"),
    ("generate-daily-reports", js.utc(2026, 10, 31, 2), "analytics.campaign_daily_stats"),
    ("monthly-usage-summary", js.utc(2026, 11, 1, 3), "analytics.event_aggregates"),
    ("score-distribution", js.utc(2026, 10, 30, 4), "analytics.daily_score_distribution"),
    ("enrichment-metrics", js.utc(2026, 10, 31, 5), "analytics.enrichment_metrics"),
]
IDS = [c[0] for c in CASES]
MONTH = (datetime(2026, 10, 1), datetime(2026, 11, 1))
DAY = (datetime(2026, 10, 30), datetime(2026, 10, 31))
INJECTION = "'); DROP TABLE analytics.contact_activity; --"


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    """Source rows for every job's slot above."""
    run(js.seed_events(pg_dsn, data.activity(*MONTH, n=3000, seed=21)))
    run(js.seed_events(pg_dsn, data.activity(*DAY, n=1500, seed=22)))
    scores = data.scores(datetime(2026, 10, 30, 4), seed=23)
    run(js.copy(pg_dsn, "scoring.lead_scores", data.SCORE_COLUMNS, (s.row() for s in scores)))
    jobs = data.enrichment_jobs(*DAY, seed=24)
    run(
        js.copy(
            pg_dsn,
            "lead_intelligence.enrichment_jobs",
            data.ENRICHMENT_COLUMNS,
            (j.row() for j in jobs),
        )
    )
    domains = data.sending_domains(datetime(2026, 10, 30), seed=25)
    run(js.copy(pg_dsn, "delivery.sending_domains", data.DOMAIN_COLUMNS, domains))
    return pg_dsn


async def clear_outputs(dsn: str) -> None:
    conn = await js.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(js.OUTPUT_TABLES)}")
    finally:
        await conn.close()


@pytest.mark.parametrize(("name", "slot", "table"), CASES, ids=IDS)
def test_job_run_twice_leaves_the_tables_of_one_run(
    dsn: str, name: str, slot: datetime, table: str
) -> None:
    run(js.run(dsn, js.job(name), slot))
    once = run(js.snapshot(dsn))
    assert once[table], f"{name} wrote nothing to {table}"
    run(js.run(dsn, js.job(name), slot))
    assert run(js.snapshot(dsn)) == once


@pytest.mark.parametrize(("name", "slot", "table"), CASES, ids=IDS)
def test_three_concurrent_runs_leave_the_tables_of_one_run(
    dsn: str, name: str, slot: datetime, table: str
) -> None:
    run(js.run_concurrently(dsn, [(js.job(name), slot)] * 3))
    concurrent = run(js.snapshot(dsn))
    run(clear_outputs(dsn))
    run(js.run(dsn, js.job(name), slot))
    once = run(js.snapshot(dsn))
    assert once[table]
    assert concurrent == once


def test_warmup_query_replayed_and_concurrent_returns_the_same_domains(dsn: str) -> None:
    warmup = js.job("warmup-daily-reset")
    slot = js.utc(2026, 10, 30)
    first = run(js.run(dsn, warmup, slot))
    assert first
    assert run(js.run(dsn, warmup, slot)) == first
    assert run(js.run_concurrently(dsn, [(warmup, slot)] * 3)) == [first] * 3


def test_every_job_replayed_in_any_order_leaves_identical_tables(dsn: str) -> None:
    plan = [(js.job(name), slot) for name, slot, _ in CASES]
    hourly = js.job("aggregate-hourly")
    plan += [(hourly, js.utc(2026, 10, 30) + timedelta(hours=h)) for h in (1, 5, 24)]
    for j, slot in plan:
        run(js.run(dsn, j, slot))
    forward = run(js.snapshot(dsn))
    run(clear_outputs(dsn))
    for j, slot in [*reversed(plan), *plan]:
        run(js.run(dsn, j, slot))
    assert run(js.snapshot(dsn)) == forward


def note_job(**params: str) -> Job:
    return Job(
        name="note",
        type="test.note",
        cron="0 * * * *",
        sql="sql/note.sql",
        window=Window(period=Period.HOUR, offset=-1),
        params=MappingProxyType(params),
    )


async def run_source(dsn: str, j: Job, source: str, slot: datetime) -> None:
    conn = await js.connect(dsn)
    try:
        async with conn.transaction():
            for st in js.statements(j, slot, source):
                await conn.execute(st.sql, *st.args, timeout=js.TIMEOUT)
    finally:
        await conn.close()


def test_parameter_value_like_an_injection_is_stored_as_data(dsn: str) -> None:
    source = (
        "INSERT INTO analytics.event_aggregates\n"
        "    (organization_id, date, event_type, channel, count, unique_count)\n"
        "VALUES ({{ params.org }}::uuid,\n"
        "        ({{ window_start }}::timestamptz AT TIME ZONE 'UTC')::date,\n"
        "        {{ params.label }}, 'note', 1, 1);\n"
    )
    org = "00000000-0000-0000-0000-00000000000a"
    run(run_source(dsn, note_job(org=org, label=INJECTION), source, js.utc(2026, 10, 30, 10)))
    rows = run(js.fetch(dsn, "SELECT event_type FROM analytics.event_aggregates"))
    assert [r[0] for r in rows] == [INJECTION]
    assert run(js.fetch(dsn, "SELECT count(*) > 0 FROM analytics.contact_activity"))[0][0]


def test_identifier_parameter_is_quoted_so_a_crafted_name_is_just_a_missing_table(
    dsn: str,
) -> None:
    source = "SELECT count(*) FROM {{ params.table | ident }};\n"
    crafted = 'x"; DROP TABLE analytics.contact_activity; --'
    with pytest.raises(asyncpg.UndefinedTableError) as caught:
        run(run_source(dsn, note_job(table=crafted), source, js.utc(2026, 10, 30, 10)))
    assert str(caught.value) == (
        'relation "x"; DROP TABLE analytics.contact_activity; --" does not exist'
    )
    assert run(js.fetch(dsn, "SELECT count(*) > 0 FROM analytics.contact_activity"))[0][0]
