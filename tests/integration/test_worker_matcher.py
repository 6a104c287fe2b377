"""The generated Worker's matcher, bundled by wrangler and run in Node, agrees with
Cloudflare's own answers (the vector file) and with the Python evaluator, and its log
line, Analytics Engine data point and error messages say what happened."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.codegen import generate
from engine.codegen.matcher import Tables
from engine.core.model import Manifest
from engine.manifest.loader import load
from engine.schedule import cron
from tests.fixtures.worker_node import bundle, drive, fnv1a
from tests.fixtures.wrangler import REPO, Wrangler

pytestmark = pytest.mark.wrangler

VECTORS: dict[str, Any] = json.loads(
    (REPO / "tests" / "data" / "cloudflare-cron-vectors.json").read_text()
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load(REPO / "jobs.yaml")


@pytest.fixture(scope="module")
def module(
    wrangler: Wrangler, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("matcher")
    generate.write(generate.render(manifest), root / "generated")
    return bundle(wrangler, root / "generated" / generate.WRANGLER, root / "out", "production")


def test_the_matcher_agrees_with_cloudflare_on_every_vector(module: Path) -> None:
    tables = Tables()
    schedules, probes, expected = [], [], []
    for i, case in enumerate(VECTORS["cases"]):
        times = [ms(t) for t, _ in case["probe"]] + [ms(t) for t in case["next"]]
        # and the minute before each later fire time: between two fire times, so no match
        fires = {ms(t) for t in case["next"]}
        before = [t - 60_000 for t in sorted(fires)[1:] if t - 60_000 not in fires]
        schedules.append(tables.schedule(cron.parse_cloudflare(case["expr"])))
        probes.append((i, times + before))
        expected.append(
            [ok for _, ok in case["probe"]] + [True] * len(fires) + [False] * len(before)
        )
    data = {**tables.json(), "schedules": schedules}
    answers = drive(module, queue="ANALYTICS_JOBS", tables=data, probes=probes)["probes"]
    wrong = [
        case["expr"]
        for case, got, want in zip(VECTORS["cases"], answers, expected, strict=True)
        if got != want
    ]
    assert wrong == []


def test_each_dispatch_logs_one_line_and_writes_one_data_point(module: Path) -> None:
    at = datetime(2026, 11, 2, 4, 0, 17, tzinfo=UTC)
    t = int(at.timestamp() * 1000)
    calls = [("0 4 * * *", t), ("0 5 * * *", t)]
    out = drive(module, queue="ANALYTICS_JOBS", dataset="LOGS_DATASET", calls=calls)["calls"]
    assert out[0] == {
        "sent": [{"type": "analytics.score-distribution", "scheduledFor": "2026-11-02T04:00:00Z"}],
        "batches": [{"messages": 1, "bytes": 77}],
        "points": [
            {
                "indexes": ["0 4 * * *"],
                "blobs": [
                    "0 4 * * *",
                    "2026-11-02T04:00:00Z",
                    "analytics.score-distribution",
                    "sent",
                ],
                "doubles": [1, t],
            }
        ],
        "logs": [
            'cronwright: dispatch trigger="0 4 * * *" scheduledTime=2026-11-02T04:00:17.000Z '
            "sent=analytics.score-distribution"
        ],
        "error": None,
    }
    # "0 5 * * *" fired at 04:00 (a hand-made invocation): its job is not due, nothing is sent.
    assert out[1]["sent"] == []
    assert out[1]["points"][0]["blobs"] == ["0 5 * * *", "2026-11-02T04:00:00Z", "", "sent"]


def test_a_disabled_flag_writes_a_skipped_data_point_naming_the_types_it_held_back(
    module: Path,
) -> None:
    t = int(datetime(2026, 11, 2, 4, tzinfo=UTC).timestamp() * 1000)
    out = drive(
        module,
        queue="ANALYTICS_JOBS",
        dataset="LOGS_DATASET",
        env={"ENABLE_ANALYTICS_CRON": "false"},
        calls=[("0 4 * * *", t)],
    )["calls"][0]
    assert out["sent"] == []
    assert out["logs"] == ['cronwright: ENABLE_ANALYTICS_CRON is not "true"; skipping 0 4 * * *']
    assert out["points"][0]["blobs"] == [
        "0 4 * * *",
        "2026-11-02T04:00:00Z",
        "analytics.score-distribution",
        "skipped",
    ]


def test_a_long_unknown_cron_is_indexed_and_kept_within_the_limits_in_bytes_not_characters(
    module: Path,
) -> None:
    short, long = "é" * 60, "é" * 600  # 120 and 1,200 bytes of UTF-8
    t = int(datetime(2026, 11, 2, 4, tzinfo=UTC).timestamp() * 1000)
    out = drive(
        module,
        queue="ANALYTICS_JOBS",
        dataset="LOGS_DATASET",
        env={"ENABLE_ANALYTICS_CRON": "false"},
        calls=[(short, t), (long, t)],
    )["calls"]
    # the index: 80 bytes and a digest past 96 bytes; the trigger's blob: 1,000 bytes at most
    assert [c["points"] for c in out] == [
        [
            {
                "indexes": ["é" * 40 + "~" + fnv1a(cron)],
                "blobs": [blob, "2026-11-02T04:00:00Z", "", "skipped"],
                "doubles": [0, t],
            }
        ]
        for cron, blob in ((short, short), (long, "é" * 500))
    ]


KNOWN = '"0 * * * *", "0 0 * * *", "0 2 * * *", "0 3 1 * *", "0 4 * * *", "0 5 * * *"'


def test_an_unknown_trigger_lists_the_known_ones(module: Path) -> None:
    out = drive(module, queue="ANALYTICS_JOBS", calls=[("30 7 * * 1", 0)])["calls"][0]
    assert out["error"] == (
        f'cronwright: no jobs for cron trigger "30 7 * * 1"; known triggers: {KNOWN}; '
        "run cronwright generate and redeploy"
    )
    assert out["sent"] == []


def test_a_trigger_named_like_an_object_member_is_unknown_too(module: Path) -> None:
    calls = [("constructor", 0), ("__proto__", 0)]
    out = drive(module, queue="ANALYTICS_JOBS", calls=calls)["calls"]
    assert [c["error"] for c in out] == [
        f'cronwright: no jobs for cron trigger "{name}"; known triggers: {KNOWN}; '
        "run cronwright generate and redeploy"
        for name, _ in calls
    ]


def test_an_unknown_spelling_of_a_known_trigger_says_which_one(module: Path) -> None:
    out = drive(module, queue="ANALYTICS_JOBS", calls=[("0  4 * *  *", 0)])["calls"][0]
    assert out["error"] == (
        'cronwright: no jobs for cron trigger "0  4 * *  *": it is a non-canonical spelling of '
        'trigger "0 4 * * *", and Cloudflare passes the trigger as written; deploy '
        "generated/wrangler.toml unchanged"
    )


def test_a_missing_cron_says_how_to_fire_one_without_a_stack_trace(module: Path) -> None:
    out = drive(module, queue="ANALYTICS_JOBS", calls=[("", 0)])["calls"][0]
    assert out == {
        "sent": [],
        "batches": [],
        "points": [],
        "logs": [
            "cronwright: this scheduled event names no cron trigger; in wrangler dev fire one "
            f"with /__scheduled?cron=<trigger>&time=<epoch ms>; known triggers: {KNOWN}"
        ],
        "error": None,
    }


ZONES = ("America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata")


@pytest.mark.parametrize("zone", ZONES)
def test_zoned_matching_in_node_equals_python_around_every_transition(
    module: Path, zone: str
) -> None:
    from engine.core.model import Dst, Gap, Repeat
    from engine.schedule.zones import ZonedSchedule

    exprs = ["30 2 * * *", "30 1 * * *", "0 9 * * MON-FRI", "*/20 0-3 * * *", "0 3 L * *"]
    # the day before each spring-forward and fall-back of the three DST zones, for 2 days
    days = ((3, 7), (3, 28), (4, 4), (10, 3), (10, 24), (10, 31))
    starts = [datetime(2026, m, d, tzinfo=UTC) for m, d in days]
    minutes = [s + timedelta(minutes=i) for s in starts for i in range(0, 2 * 1440)]
    times = [int(t.timestamp() * 1000) for t in minutes]
    tables = Tables()
    schedules, expected = [], []
    for expr in exprs:
        for gap in Gap:
            for overlap in Repeat:
                schedule = ZonedSchedule(cron.parse(expr), zone, Dst(gap=gap, overlap=overlap))
                entry = tables.schedule(
                    schedule.cron, zone=zone, gap=gap.value, overlap=overlap.value
                )
                schedules.append(entry)
                expected.append([schedule.matches(t) for t in minutes])
    data = {**tables.json(), "schedules": schedules}
    probes = [(i, times) for i in range(len(schedules))]
    answers = drive(module, queue="ANALYTICS_JOBS", tables=data, probes=probes)["probes"]
    assert answers == expected


def test_a_zoned_schedule_outside_the_zone_tables_years_fails_with_the_fix(
    module: Path,
) -> None:
    tables = Tables()
    every_minute = cron.parse("* * * * *")
    schedules = [tables.schedule(every_minute), tables.schedule(every_minute, zone="Asia/Kolkata")]
    data = {**tables.json(), "schedules": schedules}
    times = [ms(t) for t in ("2024-12-31T23:59:00Z", "2040-12-31T23:59:59Z", "2041-01-01T00:00Z")]
    probes = [(0, times), (1, times)]
    utc, zoned = drive(module, queue="ANALYTICS_JOBS", tables=data, probes=probes)["probes"]
    assert utc == [True, True, True]
    outside = (
        "cronwright: {} is outside the years this Worker's time zone tables cover "
        "(2025-01-01T00:00:00.000Z to 2041-01-01T00:00:00.000Z); run cronwright generate "
        "with a cronwright whose horizon covers it, and redeploy"
    )
    assert zoned == [
        outside.format("2024-12-31T23:59:00.000Z"),
        True,
        outside.format("2041-01-01T00:00:00.000Z"),
    ]
