"""The daily, monthly, score, enrichment and warmup SQL on real PostgreSQL, each against
values computed independently in Python from the same generated rows."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.fixtures.aio import run
from tests.integration import job_data as data
from tests.integration import jobs_support as js

pytestmark = pytest.mark.postgres

REPORT_SLOT = js.utc(2026, 10, 31, 2)  # window: 2026-10-30
MONTHLY_SLOT = js.utc(2026, 3, 1, 3)  # window: February 2026
SCORE_SLOT = js.utc(2026, 10, 30, 4)
ENRICH_SLOT = js.utc(2026, 10, 31, 5)  # window: 2026-10-30
WARMUP_SLOT = js.utc(2026, 10, 30)


def bounds(name: str, slot: Any) -> tuple[Any, Any]:
    start, end = js.job(name).window.bounds(slot)
    return js.naive(start), js.naive(end)


def test_daily_reports_count_each_campaigns_email_events_of_the_previous_day(
    pg_dsn: str,
) -> None:
    start, end = bounds("generate-daily-reports", REPORT_SLOT)
    events = data.activity(start, end, n=1500, seed=5)
    run(js.seed_events(pg_dsn, events))
    run(js.run(pg_dsn, js.job("generate-daily-reports"), REPORT_SLOT))
    rows = run(js.fetch(pg_dsn, "SELECT * FROM analytics.campaign_daily_stats"))
    got = {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}
    expected = data.campaign_stats(events, start, end)
    assert got == expected
    assert len({k[0] for k in expected}) < len(expected)  # a campaign id in two orgs


def test_monthly_usage_writes_monthly_rows_for_the_previous_calendar_month(pg_dsn: str) -> None:
    start, end = bounds("monthly-usage-summary", MONTHLY_SLOT)
    events = data.activity(start, end, n=2000, seed=6)
    run(js.seed_events(pg_dsn, events))
    hourly = (uuid.UUID(int=1), start.date(), "email_sent", "hourly_rollup")
    run(
        js.copy(
            pg_dsn,
            "analytics.event_aggregates",
            ("organization_id", "date", "event_type", "channel", "count", "unique_count"),
            [(*hourly, 7, 3)],
        )
    )
    run(js.run(pg_dsn, js.job("monthly-usage-summary"), MONTHLY_SLOT))
    rows = run(js.fetch(pg_dsn, "SELECT * FROM analytics.event_aggregates"))
    got = {tuple(r[:4]): tuple(r[4:]) for r in rows}
    assert got == {**data.monthly_usage(events, start, end), hourly: (7, 3)}
    assert start.date().isoformat() == "2026-02-01"


def test_score_distribution_uses_each_contacts_latest_score_before_the_slot(pg_dsn: str) -> None:
    rows = data.scores(js.naive(SCORE_SLOT), seed=8)
    run(js.copy(pg_dsn, "scoring.lead_scores", data.SCORE_COLUMNS, (s.row() for s in rows)))
    run(js.run(pg_dsn, js.job("score-distribution"), SCORE_SLOT))
    got = {
        (r[0], r[1]): tuple(r[2:])
        for r in run(js.fetch(pg_dsn, "SELECT * FROM analytics.daily_score_distribution"))
    }
    expected = data.score_distribution(rows, js.naive(SCORE_SLOT))
    assert got.keys() == expected.keys()
    for key, (avg, lo, hi, p50, p90, p95, total) in expected.items():
        assert got[key] == (
            avg,
            lo,
            hi,
            pytest.approx(p50),
            pytest.approx(p90),
            pytest.approx(p95),
            total,
        )


def test_enrichment_metrics_summarise_the_previous_days_jobs(pg_dsn: str) -> None:
    start, end = bounds("enrichment-metrics", ENRICH_SLOT)
    jobs = data.enrichment_jobs(start, end, seed=9)
    run(
        js.copy(
            pg_dsn,
            "lead_intelligence.enrichment_jobs",
            data.ENRICHMENT_COLUMNS,
            (j.row() for j in jobs),
        )
    )
    run(js.run(pg_dsn, js.job("enrichment-metrics"), ENRICH_SLOT))
    got = {
        (r[0], r[1]): tuple(r[2:])
        for r in run(js.fetch(pg_dsn, "SELECT * FROM analytics.enrichment_metrics"))
    }
    expected = data.enrichment_metrics(jobs, start, end, js.naive(ENRICH_SLOT))
    assert got == expected


def test_warmup_query_selects_verified_domains_created_in_the_30_days_before_the_slot(
    pg_dsn: str,
) -> None:
    rows = data.sending_domains(js.naive(WARMUP_SLOT), seed=10)
    run(js.copy(pg_dsn, "delivery.sending_domains", data.DOMAIN_COLUMNS, rows))
    got = run(js.run(pg_dsn, js.job("warmup-daily-reset"), WARMUP_SLOT))
    assert [tuple(r) for r in got] == data.warmup_domains(rows, js.naive(WARMUP_SLOT))
    assert [list(r.keys()) for r in got[:1]] == [["organization_id", "domain"]]
