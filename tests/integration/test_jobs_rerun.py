"""A rerun of the window jobs after their source changed: the window is recomputed and
its rows REPLACED (a group whose source rows are gone loses its row), checked against the
independent Python values of tests/integration/job_data.py over the rows as they stand."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.aio import run
from tests.integration import job_data as data
from tests.integration import jobs_support as js

pytestmark = pytest.mark.postgres

REPORT_SLOT = js.utc(2026, 10, 31, 2)  # window: 2026-10-30
MONTHLY_SLOT = js.utc(2026, 3, 1, 3)  # window: February 2026
ENRICH_SLOT = js.utc(2026, 10, 31, 5)  # window: 2026-10-30


def bounds(name: str, slot: Any) -> tuple[Any, Any]:
    start, end = js.job(name).window.bounds(slot)
    return js.naive(start), js.naive(end)


async def execute(dsn: str, sql: str, *args: Any) -> None:
    conn = await js.connect(dsn)
    try:
        await conn.execute(sql, *args, timeout=js.TIMEOUT)
    finally:
        await conn.close(timeout=js.TIMEOUT)


def test_rerun_of_daily_reports_drops_a_campaign_whose_events_are_gone(pg_dsn: str) -> None:
    job = js.job("generate-daily-reports")
    start, end = bounds(job.name, REPORT_SLOT)
    events = data.activity(start, end, n=1500, seed=15)
    run(js.seed_events(pg_dsn, events))
    run(js.run(pg_dsn, job, REPORT_SLOT))
    gone = sorted(k[0] for k in data.campaign_stats(events, start, end))[0]
    run(execute(pg_dsn, "DELETE FROM analytics.contact_activity WHERE event_source = $1", gone))
    now = [e for e in events if e.event_source != gone]
    run(js.run(pg_dsn, job, REPORT_SLOT))
    rows = run(js.fetch(pg_dsn, "SELECT * FROM analytics.campaign_daily_stats"))
    assert {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows} == data.campaign_stats(now, start, end)
    assert gone not in {r[0] for r in rows}
    once = run(js.snapshot(pg_dsn))
    run(js.run_concurrently(pg_dsn, [(job, REPORT_SLOT)] * 3))
    assert run(js.snapshot(pg_dsn)) == once


def test_rerun_of_monthly_usage_drops_an_event_type_that_is_gone(pg_dsn: str) -> None:
    job = js.job("monthly-usage-summary")
    start, end = bounds(job.name, MONTHLY_SLOT)
    events = data.activity(start, end, n=2000, seed=16)
    run(js.seed_events(pg_dsn, events))
    run(js.run(pg_dsn, job, MONTHLY_SLOT))
    run(execute(pg_dsn, "DELETE FROM analytics.contact_activity WHERE event_type = 'page_view'"))
    now = [e for e in events if e.event_type != "page_view"]
    run(js.run(pg_dsn, job, MONTHLY_SLOT))
    rows = run(js.fetch(pg_dsn, "SELECT * FROM analytics.event_aggregates"))
    assert {tuple(r[:4]): tuple(r[4:]) for r in rows} == data.monthly_usage(now, start, end)


def test_rerun_of_enrichment_metrics_drops_an_org_whose_jobs_are_gone(pg_dsn: str) -> None:
    job = js.job("enrichment-metrics")
    start, end = bounds(job.name, ENRICH_SLOT)
    jobs = data.enrichment_jobs(start, end, seed=17)
    run(
        js.copy(
            pg_dsn,
            "lead_intelligence.enrichment_jobs",
            data.ENRICHMENT_COLUMNS,
            [j.row() for j in jobs],
        )
    )
    run(js.run(pg_dsn, job, ENRICH_SLOT))
    org = sorted(k[0] for k in data.enrichment_metrics(jobs, start, end, js.naive(ENRICH_SLOT)))[0]
    run(
        execute(
            pg_dsn, "DELETE FROM lead_intelligence.enrichment_jobs WHERE organization_id = $1", org
        )
    )
    now = [j for j in jobs if j.organization_id != org]
    run(js.run(pg_dsn, job, ENRICH_SLOT))
    rows = run(js.fetch(pg_dsn, "SELECT * FROM analytics.enrichment_metrics"))
    expected = data.enrichment_metrics(now, start, end, js.naive(ENRICH_SLOT))
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == expected
