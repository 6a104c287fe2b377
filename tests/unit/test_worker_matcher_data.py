"""The Worker's matcher data: each distinct schedule of a trigger once, as bit masks with a
shared day pattern, and each zone as its offset changes over the horizon. (That the Worker
reads it exactly as Python evaluates is tests/integration/test_worker_matcher.py and
tests/property/test_worker_fold_properties.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.codegen import generate
from engine.codegen.matcher import Tables
from engine.manifest.loader import load
from engine.schedule import cron

MANIFEST = """\
version: 1
plan: paid
worker: {name: data-worker, compatibility_date: "2026-04-01", cron_flag: RUN_CRON}
queue: {name: data-jobs, binding: JOBS, dead_letter_queue: data-jobs-dlq}
jobs:
  a: {type: data.a, cron: "*/30 * * * *", sql: sql/a.sql, window: {period: hour, offset: -1}}
  b: {type: data.b, cron: "0,30 * * * *", sql: sql/a.sql, window: {period: hour, offset: -1}}
  c: {type: data.c, cron: "*/30 * * * *", sql: sql/a.sql, window: {period: hour, offset: -1},
      timezone: Europe/Berlin}
  d: {type: data.d, cron: "*/30 * * * *", sql: sql/a.sql, window: {period: hour, offset: -1},
      paused: true}
"""
EVERY_HOUR = (1 << 24) - 1
EVERY_MONTH = 0b1111111111110  # bit m for month m


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1000


def test_jobs_with_one_schedule_share_one_entry_of_their_trigger(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "a.sql").write_text("SELECT {{ slot }};\n")
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    table = generate.dispatch_table(load(tmp_path / "jobs.yaml"))
    every_half_hour = {"minutes": [1, 1], "hours": EVERY_HOUR, "months": EVERY_MONTH, "days": 0}
    # Berlin's offsets (+1 h, +2 h) keep its half hours on UTC half hours: the same trigger,
    # but its own entry; the paused job is on no trigger.
    assert table["triggers"] == {"*/30 * * * *": ["data.a", "data.b", "data.c"]}
    assert table["matcher"]["triggers"] == {
        "*/30 * * * *": [
            {"types": ["data.a", "data.b"], **every_half_hour, "zone": None, "gap": None,
             "overlap": None},
            {"types": ["data.c"], **every_half_hour, "zone": "Europe/Berlin", "gap": "shift",
             "overlap": "first"},
        ]
    }  # fmt: skip
    assert "match" not in table["jobs"]["data.a"]


def test_a_schedule_is_bit_masks_and_an_index_into_shared_day_patterns() -> None:
    tables = Tables()
    last = tables.schedule(cron.parse("5,35 1 L 2,3 *"))
    assert last == {
        "minutes": [1 << 5, 1 << 5],
        "hours": 1 << 1,
        "months": (1 << 2) | (1 << 3),
        "days": 0,
        "zone": None,
        "gap": None,
        "overlap": None,
    }
    assert tables.schedule(cron.parse("0 0 L * *"))["days"] == 0
    assert tables.schedule(cron.parse("0 0 1 * *"))["days"] == 1
    # days[i][(days in the month - 28) * 7 + weekday of the 1st]: bit d for a matching day d
    assert tables.json()["days"] == [
        [1 << 28] * 7 + [1 << 29] * 7 + [1 << 30] * 7 + [1 << 31] * 7,
        [1 << 1] * 28,
    ]


def test_a_zone_is_its_offset_at_the_horizons_start_and_each_change_through_it() -> None:
    tables = Tables()
    tables.schedule(cron.parse("0 9 * * *"), zone="America/New_York")
    tables.schedule(cron.parse("0 9 * * *"), zone="Asia/Kolkata", gap="skip", overlap="both")
    data = tables.json()
    assert data["horizon"] == [ms("2025-01-01T00:00"), ms("2041-01-01T00:00")]
    assert data["zones"]["Asia/Kolkata"] == {"offset": 330, "transitions": []}
    new_york = data["zones"]["America/New_York"]
    assert new_york["offset"] == -300
    assert len(new_york["transitions"]) == 32  # two a year, 2025 to 2040
    assert new_york["transitions"][:2] == [
        [ms("2025-03-09T07:00"), -300, -240],
        [ms("2025-11-02T06:00"), -240, -300],
    ]
    assert new_york["transitions"][-1] == [ms("2040-11-04T06:00"), -240, -300]
