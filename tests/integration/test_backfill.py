"""``cronwright backfill`` on real PostgreSQL: a week of hourly slots plus the daily jobs,
run through the executor with bounded concurrency, out of order, interrupted and resumed;
every table is compared with the independent Python values over the same rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from engine import manifest as manifests
from engine.app import backfill
from engine.core.model import Manifest
from engine.schedule.slots import between, cron_schedule
from tests.fixtures.aio import run
from tests.integration import job_data as data
from tests.integration import jobs_support as js

pytestmark = pytest.mark.postgres

START = js.utc(2026, 10, 5, 1)  # the first hourly slot: 01:00 on Monday 5 October
END = js.utc(2026, 10, 12, 1) + timedelta(
    minutes=1
)  # up to the 01:00 run that settles the 11th, included
DAYS = [date(2026, 10, 5) + timedelta(days=d) for d in range(7)]
JOBS = ("aggregate-hourly", "generate-daily-reports", "score-distribution", "enrichment-metrics")
MANIFEST: Manifest = manifests.load(js.ROOT / "jobs.yaml")


class Week:
    """The source rows of the week and what each output table must hold after it."""

    def __init__(self) -> None:
        first, last = js.naive(START) - timedelta(hours=1), js.naive(END)
        self.events = data.activity(first, last, n=2500, seed=21)
        self.scores = [s for d in range(8) for s in data.scores(js.naive(START), seed=30 + d)]
        self.enrichments = [
            e
            for d in range(-1, 8)
            for e in data.enrichment_jobs(
                datetime(2026, 10, 5) + timedelta(days=d),
                datetime(2026, 10, 6) + timedelta(days=d),
                seed=40 + d,
            )
        ]

    async def seed(self, dsn: str) -> None:
        await js.seed_events(dsn, self.events)
        await js.copy(
            dsn, "scoring.lead_scores", data.SCORE_COLUMNS, [s.row() for s in self.scores]
        )
        await js.copy(
            dsn,
            "lead_intelligence.enrichment_jobs",
            data.ENRICHMENT_COLUMNS,
            [e.row() for e in self.enrichments],
        )

    def expected(self, slots: dict[str, list[datetime]] | None = None) -> dict[str, Any]:
        """Each table after the given slots ran (default: every slot of the week)."""
        slots = slots or {name: slots_of(name) for name in JOBS}
        out: dict[str, Any] = {}
        hourly = slots["aggregate-hourly"]
        out["hourly"] = self.hourly(hourly)
        out["campaigns"], out["enrichment"], out["scores"] = {}, {}, {}
        for slot in slots["generate-daily-reports"]:
            start, end = window("generate-daily-reports", slot)
            out["campaigns"].update(data.campaign_stats(self.events, start, end))
        for slot in slots["enrichment-metrics"]:
            start, end = window("enrichment-metrics", slot)
            got = data.enrichment_metrics(self.enrichments, start, end, js.naive(slot))
            out["enrichment"].update(got)
        for slot in slots["score-distribution"]:
            out["scores"].update(data.score_distribution(self.scores, js.naive(slot)))
        return out

    def hourly(self, slots: list[datetime]) -> dict[tuple[Any, ...], tuple[int, int]]:
        """All slots ran (in any order): every day whose midnight run came is whole; the
        last day holds its events up to its latest slot."""
        if not slots:
            return {}
        latest = js.naive(max(slots))
        counts: dict[tuple[Any, ...], int] = defaultdict(int)
        contacts: dict[tuple[Any, ...], set[uuid.UUID]] = defaultdict(set)
        first = js.naive(min(slots)).replace(hour=0)
        for e in self.events:
            if first <= e.created_at < latest:
                key = (e.organization_id, e.created_at.date(), e.event_type)
                counts[key] += 1
                contacts[key].add(e.contact_id)
        return {k: (counts[k], len(contacts[k])) for k in counts}


def slots_of(name: str, start: datetime = START, end: datetime = END) -> list[datetime]:
    return between(cron_schedule(MANIFEST.find_job(name)), start, end)


def window(name: str, slot: datetime) -> tuple[datetime, datetime]:
    start, end = MANIFEST.find_job(name).window.bounds(slot)
    return js.naive(start), js.naive(end)


async def tables(dsn: str) -> dict[str, Any]:
    hourly = await js.fetch(
        dsn,
        "SELECT organization_id, date, event_type, count, unique_count "
        "FROM analytics.event_aggregates WHERE channel = 'hourly_rollup'",
    )
    campaigns = await js.fetch(dsn, "SELECT * FROM analytics.campaign_daily_stats")
    enrichment = await js.fetch(dsn, "SELECT * FROM analytics.enrichment_metrics")
    scores = await js.fetch(dsn, "SELECT * FROM analytics.daily_score_distribution")
    return {
        "hourly": {(r[0], r[1], r[2]): (r[3], r[4]) for r in hourly},
        "campaigns": {(r[0], r[1], r[2]): tuple(r[3:]) for r in campaigns},
        "enrichment": {(r[0], r[1]): tuple(r[2:]) for r in enrichment},
        "scores": {(r[0], r[1]): tuple(r[2:]) for r in scores},
    }


async def ledger(dsn: str) -> dict[str, int]:
    rows = await js.fetch(dsn, "SELECT status, count(*) FROM cronwright.runs GROUP BY status")
    return {r[0]: r[1] for r in rows}


def backfill_in_process(
    dsn: str, start: datetime = START, end: datetime = END, **kw: Any
) -> list[backfill.Done]:
    jobs = [MANIFEST.find_job(name) for name in JOBS]
    _, done = run(backfill.run(MANIFEST, jobs, start, end, dsn=dsn, **kw), timeout=300)
    return done


@pytest.fixture
def week(pg_dsn: str) -> Week:
    w = Week()
    run(w.seed(pg_dsn))
    return w


def test_week_backfilled_out_of_order_with_concurrency_4_equals_the_oracle(
    pg_dsn: str, week: Week
) -> None:
    # The second half first, then the whole week: the first half runs after the second.
    middle = js.utc(2026, 10, 8, 13)
    later = backfill_in_process(pg_dsn, middle, END, concurrency=4)
    assert {d.status for d in later} == {"succeeded"}
    done = backfill_in_process(pg_dsn, concurrency=4)
    total = sum(len(slots_of(name)) for name in JOBS)
    assert len(done) == total
    assert sum(d.status == "skipped" for d in done) == len(later)
    assert {d.status for d in done} == {"succeeded", "skipped"}
    assert run(tables(pg_dsn)) == week.expected()
    assert run(ledger(pg_dsn)) == {"succeeded": total}

    before = run(js.snapshot(pg_dsn))
    again = backfill_in_process(pg_dsn, concurrency=4)
    assert {d.status for d in again} == {"skipped"}
    assert run(js.snapshot(pg_dsn)) == before


def test_dry_run_lists_every_slot_with_its_status_and_runs_nothing(pg_dsn: str, week: Week) -> None:
    job = MANIFEST.find_job("generate-daily-reports")
    first_two = js.utc(2026, 10, 6, 3)
    run(backfill.run(MANIFEST, [job], START, first_two, dsn=pg_dsn))
    planned, done = run(backfill.run(MANIFEST, [job], START, END, dsn=pg_dsn, dry_run=True))
    assert done == []
    # Never seen by a scheduler or consumer, the job owes nothing: what did not run is
    # before its history (which is what a backfill is for).
    assert [(p.slot, p.status) for p in planned] == [
        (slot, "succeeded" if slot < first_two else "not_deployed") for slot in slots_of(job.name)
    ]
    assert run(ledger(pg_dsn)) == {"succeeded": 2}


def cli(dsn: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "backfill", *JOBS, *args],
        cwd=js.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_midway_leaves_every_slot_done_or_not_started_and_a_resume_completes(
    pg_dsn: str, week: Week
) -> None:
    span = ("--from", "2026-10-05T01:00:00Z", "--to", "2026-10-12T01:01:00Z")
    proc = cli(pg_dsn, *span, "--concurrency", "4")
    total = sum(len(slots_of(name)) for name in JOBS)
    deadline = time.monotonic() + 120
    while run(ledger(pg_dsn)).get("succeeded", 0) < 20:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "(stopped by Ctrl-C)" in out
    statuses = run(ledger(pg_dsn))
    assert set(statuses) == {"succeeded"} and 20 <= statuses["succeeded"] < total
    # What ran is whole: each table holds exactly the slots the ledger says succeeded.
    rows = run(js.fetch(pg_dsn, "SELECT job, slot FROM cronwright.runs"))
    ran: dict[str, list[datetime]] = {name: [] for name in JOBS}
    for r in rows:
        ran[r["job"]].append(r["slot"])
    assert run(tables(pg_dsn)) == week.expected(ran)
    marks = run(js.fetch(pg_dsn, "SELECT date, aggregated_until FROM analytics.event_rollup_days"))
    assert max(m[1] for m in marks) == js.naive(max(ran["aggregate-hourly"]))

    resumed = cli(pg_dsn, *span, "--concurrency", "4")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"backfill of {total} slots:" in out
    assert run(tables(pg_dsn)) == week.expected()
    assert run(ledger(pg_dsn)) == {"succeeded": total}


REPORTS = [
    "generate-daily-reports",
    "--from",
    "2026-10-05T00:00:00Z",
    "--to",
    "2026-10-07T00:00:00Z",
]


def reports(
    dsn: str, *args: str, stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """`cronwright backfill generate-daily-reports` over its first two slots."""
    return subprocess.run(
        [sys.executable, "-m", "engine", "backfill", *REPORTS, *args],
        cwd=js.ROOT,
        env={**os.environ, "DATABASE_URL": dsn},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


def test_backfill_prints_one_line_per_slot_and_the_summary_and_no_metric_lines(
    pg_dsn: str, week: Week
) -> None:
    proc = reports(pg_dsn)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == (
        f"generate-daily-reports 2026-10-05T02:00:00Z: succeeded rows={len(_campaigns_on(week, 4))}\n"
        f"generate-daily-reports 2026-10-06T02:00:00Z: succeeded rows={len(_campaigns_on(week, 5))}\n"
        "backfill of 2 slots: 2 succeeded\n"
    )
    again = reports(pg_dsn)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == (
        "generate-daily-reports 2026-10-05T02:00:00Z: skipped\n"
        "generate-daily-reports 2026-10-06T02:00:00Z: skipped\n"
        "backfill of 2 slots: 2 skipped\n"
    )


def test_backfill_json_prints_one_object_per_slot_on_stdout_and_the_summary_on_stderr(
    pg_dsn: str, week: Week
) -> None:
    import json

    proc = reports(pg_dsn, "--json")
    assert (proc.returncode, proc.stderr) == (0, "backfill of 2 slots: 2 succeeded\n")
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [
        {"job": "generate-daily-reports", "slot": "2026-10-05T02:00:00Z",
         "status": "succeeded", "rows": len(_campaigns_on(week, 4))},
        {"job": "generate-daily-reports", "slot": "2026-10-06T02:00:00Z",
         "status": "succeeded", "rows": len(_campaigns_on(week, 5))},
    ]  # fmt: skip
    dry = reports(pg_dsn, "--json", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert [json.loads(line) for line in dry.stdout.splitlines()] == [
        {"job": "generate-daily-reports", "slot": "2026-10-05T02:00:00Z", "status": "succeeded"},
        {"job": "generate-daily-reports", "slot": "2026-10-06T02:00:00Z", "status": "succeeded"},
    ]


def test_backfill_into_a_closed_pipe_ends_quietly_and_leaves_each_slot_done_or_not_started(
    pg_dsn: str, week: Week
) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        proc = reports(pg_dsn, stdout=write)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")
    # The first slot's line met the closed pipe: it had committed; the second never ran.
    assert run(ledger(pg_dsn)) == {"succeeded": 1}


def _campaigns_on(week: Week, day: int) -> dict[Any, Any]:
    start = datetime(2026, 10, day)
    return data.campaign_stats(week.events, start, start + timedelta(days=1))


def test_backfill_with_an_empty_range_is_bad_input(pg_dsn: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "backfill", "aggregate-hourly",
         "--from", "2026-10-05T00:00:00Z", "--to", "2026-10-05T00:00:00Z"],
        cwd=js.ROOT,
        env={**os.environ, "DATABASE_URL": pg_dsn},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --from 2026-10-05T00:00:00+00:00 is not before --to 2026-10-05T00:00:00+00:00;"
        " give a non-empty range\n"
    )


def test_backfill_rerun_recomputes_every_slot_from_the_source_as_it_stands_now(
    pg_dsn: str, week: Week
) -> None:
    done = backfill_in_process(pg_dsn, concurrency=4)
    assert {d.status for d in done} == {"succeeded"}
    # Late events land inside Wednesday after the week ran: a plain backfill skips every
    # slot, a rerun recomputes them and the tables equal the oracle over all events.
    day = datetime(2026, 10, 7)
    late = [
        e
        for e in data.activity(day, day + timedelta(days=1), n=400, seed=77)
        if day <= e.created_at < day + timedelta(days=1)
    ]
    assert late
    run(js.seed_events(pg_dsn, late))
    assert {d.status for d in backfill_in_process(pg_dsn, concurrency=4)} == {"skipped"}
    assert run(tables(pg_dsn)) == week.expected()  # the late events are not counted

    week.events = week.events + late
    again = backfill_in_process(pg_dsn, concurrency=4, rerun=True)
    assert {d.status for d in again} == {"succeeded"}
    assert run(tables(pg_dsn)) == week.expected()


def test_backfill_on_a_terminal_draws_a_bar_instead_of_a_line_per_slot(
    pg_dsn: str, week: Week
) -> None:
    import fcntl
    import pty
    import struct
    import termios

    terminal, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "backfill", *REPORTS],
        cwd=js.ROOT,
        env={**os.environ, "DATABASE_URL": pg_dsn},
        stdout=child,
        stderr=child,
    )
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert proc.wait(timeout=120) == 0
    text = shown.decode().replace("\r\n", "\n")
    assert "2/2" in text  # tqdm's count of slots done
    assert "succeeded rows=" not in text and "{" not in text
    assert text.endswith("backfill of 2 slots: 2 succeeded\n")
