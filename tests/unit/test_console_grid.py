"""The grid's shape: pages within the cell cap, one time scale for every row, cells from
each slot to the next, readable ticks; and the range picker's reading of a query."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devtools.manifests import probe_manifest
from engine.app.console import grid, ranges
from engine.core.model import Job
from tests.integration.executor_support import make_job

T0 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def job(name: str = "probe", cron: str = "0 * * * *", **kw: object) -> Job:
    return replace(make_job(name=name, cron=cron), **kw)  # type: ignore[arg-type]


def test_jobs_are_split_over_pages_of_at_most_the_cell_cap_in_order() -> None:
    minute = [T0 + k * MIN for k in range(1440)]
    wanted = [(job(f"j{i}"), minute) for i in range(15)]
    pages = grid.pages(wanted)
    assert pages == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14]]
    assert all(sum(len(wanted[i][1]) for i in page) <= grid.MAX_CELLS for page in pages)
    assert grid.pages([]) == [[]]
    assert grid.pages([(job(), [])]) == [[0]]


def test_one_job_with_more_slots_than_a_page_is_refused_with_the_reason() -> None:
    week = [T0 + k * MIN for k in range(7 * 1440)]
    with pytest.raises(grid.TooManyCells) as err:
        grid.pages([(job("minutely", "* * * * *"), week)])
    assert str(err.value) == (
        "minutely has 10,080 slots in this range, more than the 10,000 cells a page shows:"
        " narrow the range"
    )


def test_the_scale_gives_the_densest_job_its_minimum_cell_and_lines_rows_up() -> None:
    day = T0 + timedelta(days=1)
    minutely = [T0 + k * MIN for k in range(1440)]
    hourly = [T0 + k * timedelta(hours=1) for k in range(24)]
    s = grid.scale(T0, day, [minutely, hourly])
    assert s.width_px == 1440 * grid.MIN_CELL_PX
    assert s.left(T0 + timedelta(hours=6)) == 25.0
    only_hourly = grid.scale(T0, day, [hourly])
    assert only_hourly.width_px == grid.MIN_TRACK_PX  # sparse rows still fill a screen
    assert grid.scale(T0, day, [[T0]]).width_px == grid.MIN_TRACK_PX


def test_a_cell_spans_its_slot_up_to_the_next_and_says_what_it_is() -> None:
    s = grid.scale(T0, T0 + timedelta(hours=4), [])
    zoned = job("paris", timezone="Europe/Paris")
    rows = [(T0, "succeeded", 1), (T0 + timedelta(hours=1), "failed", 3)]
    cells = grid.cells(s, zoned, rows, T0 + timedelta(hours=2))
    assert [(c.slot, c.status, c.left, c.width) for c in cells] == [
        ("2026-10-31T00:00:00Z", "succeeded", 0.0, 25.0),
        ("2026-10-31T01:00:00Z", "failed", 25.0, 25.0),
    ]
    assert cells[1].title == "2026-10-31 02:00 CET (2026-10-31 01:00Z) failed, 3 attempts"
    last = grid.cells(s, job(), [(T0 + timedelta(hours=3, minutes=30), "missing", 0)], None)
    assert (last[0].width, last[0].title) == (12.5, "2026-10-31 03:30Z missing")


def test_ticks_are_at_least_their_minimum_apart_and_days_show_their_date() -> None:
    s = grid.Scale(T0 - timedelta(hours=12), T0 + timedelta(hours=12), 960)
    ticks = grid.ticks(s)
    labels = [t.label for t in ticks]
    assert labels == ["12:00", "15:00", "18:00", "21:00", "Oct 31", "03:00", "06:00", "09:00"]
    gaps = [(b.left - a.left) / 100 * s.width_px for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= grid.MIN_TICK_PX


# --- the range picker ---------------------------------------------------------------

NOW = datetime(2026, 10, 31, 10, 17, 42, tzinfo=UTC)
MANIFEST = probe_manifest(job("probe"), job("other", type="test.other"))


def parse(**query: str | list[str]) -> ranges.Range:
    q = {k: v if isinstance(v, list) else [v] for k, v in query.items()}
    return ranges.parse(q, MANIFEST, NOW)


def test_by_default_the_grid_shows_the_last_day_up_to_the_current_minute() -> None:
    r = parse()
    assert (r.start, r.end, r.preset, r.job, r.page) == (
        datetime(2026, 10, 30, 10, 18, tzinfo=UTC),
        datetime(2026, 10, 31, 10, 18, tzinfo=UTC),
        "24h",
        None,
        1,
    )
    assert r.query() == "range=24h"
    assert parse(range="1h").start == datetime(2026, 10, 31, 9, 18, tzinfo=UTC)


def test_a_fixed_range_a_job_and_a_page_are_read_as_slots_reads_them() -> None:
    r = parse(
        **{"from": "2026-10-30T08:00", "to": "2026-10-30T20:00:00Z"}, job="test.other", page="2"
    )
    assert (r.start, r.end, r.preset, r.job and r.job.name, r.page) == (
        datetime(2026, 10, 30, 8, 0, tzinfo=UTC),
        datetime(2026, 10, 30, 20, 0, tzinfo=UTC),
        None,
        "other",
        2,
    )
    assert r.query(page=3) == (
        "from=2026-10-30T08%3A00%3A00Z&to=2026-10-30T20%3A00%3A00Z&job=other&page=3"
    )
    assert parse(**{"from": "2026-10-31T01:00:00Z"}).end == NOW  # to: now
    assert parse(to="2026-10-31T01:00:00Z").start == datetime(2026, 10, 30, 1, 0, tzinfo=UTC)
    assert parse(**{"from": "", "to": ""}).preset == "24h"  # an empty picker


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"range": "2w"}, "range: '2w' is not one of 1h, 6h, 24h, 7d"),
        ({"range": "1h", "from": "2026-10-30T00:00Z"}, "give either range or from/to, not both"),
        ({"from": "yesterday"}, "from: 'yesterday' is not an ISO 8601 time (2026-10-31T10:00:00Z)"),
        (
            {"from": "2026-10-31T02:00Z", "to": "2026-10-31T01:00Z"},
            "to 2026-10-31T01:00:00Z is not after from 2026-10-31T02:00:00Z",
        ),
        (
            {"from": "2026-08-01T00:00Z", "to": "2026-10-01T00:00Z"},
            "the range is 61.0 days long; at most 31: narrow it",
        ),
        ({"page": "0"}, "page: '0' is not a page number (1 to 10000)"),
        ({"page": "²"}, "page: '²' is not a page number (1 to 10000)"),
        (
            {"job": "nope"},
            "job: unknown job 'nope' (give a job name or its message type); known jobs (types): other (test.other), probe (test.probe)",
        ),
        ({"range": ["1h", "6h"]}, "range is given 2 times; give it once"),
        ({"to": "9" * 201}, "to is 201 characters long; at most 200"),
        ({"job": "probe\nX-Injected: 1"}, "job holds a character that cannot be printed"),
    ],
)
def test_a_query_the_grid_cannot_use_is_refused_with_its_reason(
    query: dict[str, str | list[str]], reason: str
) -> None:
    with pytest.raises(ranges.BadQuery) as err:
        parse(**query)
    assert str(err.value) == reason


def test_a_time_outside_the_sane_range_of_slots_is_refused_as_slots_refuses_it() -> None:
    with pytest.raises(ranges.BadQuery) as err:
        parse(**{"from": "1969-12-31T00:00:00Z"})
    assert str(err.value).startswith("from: 1969-12-31T00:00:00Z is before 1970-01-01T00:00:00Z")
