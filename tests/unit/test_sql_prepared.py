"""A template rendered once per job (sqltemplates.prepare) runs exactly what a full render
of each slot runs, and a template whose text could depend on the slot is never
prepared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.adapters.pgliteral import inline
from engine.core.model import Job, Period, Window
from engine.manifest.loader import load
from engine.sql import sqltemplates

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load(ROOT / "jobs.yaml")
SQL_JOBS = [job for job in MANIFEST.jobs if job.template]


def statements(rendered: sqltemplates.Rendered) -> list[str]:
    """What reaches the server: each statement with its values written in."""
    return [inline(s.sql, s.args) for s in sqltemplates.split_statements(rendered)]


def probe_job(window: Window | None = None) -> Job:
    return Job(
        name="probe",
        type="test.probe",
        cron="0 * * * *",
        sql="probe.sql",
        window=window or Window(period=Period.HOUR, offset=-1),
        params={"table": "probe.t", "limit": 5},
    )


SLOTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
).map(lambda t: t.replace(second=0, microsecond=0))


@pytest.mark.parametrize("job", SQL_JOBS, ids=[job.name for job in SQL_JOBS])
@pytest.mark.parametrize("rerun", [False, True], ids=["run", "rerun"])
@settings(max_examples=40, deadline=None)
@given(slot=SLOTS)
def test_every_project_template_prepared_once_runs_what_a_full_render_runs(
    job: Job, rerun: bool, slot: datetime
) -> None:
    source = (ROOT / job.template).read_text()
    prepared = sqltemplates.prepare(job, source, rerun=rerun)
    assert prepared is not None  # they all use slot values only as binds
    full = sqltemplates.render(job, source, slot, rerun=rerun)
    assert statements(prepared.fill(job, slot)) == statements(full)


def test_slot_values_that_coincide_reach_the_same_places_as_in_a_full_render() -> None:
    # window_end equals the slot for offset -1, and window_start for offset 0.
    source = (
        "SELECT {{ window_start }}, {{ window_end }}, {{ slot }}, {{ window_start }},"
        " {{ params.limit }};"
    )
    for offset in (-1, 0):
        job = probe_job(Window(period=Period.DAY, offset=offset))
        slot = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)
        prepared = sqltemplates.prepare(job, source)
        assert prepared is not None
        full = sqltemplates.render(job, source, slot)
        assert statements(prepared.fill(job, slot)) == statements(full)


@pytest.mark.parametrize(
    "source",
    [
        "{% if slot.hour == 0 %}DELETE FROM t;{% endif %}SELECT {{ slot }};",
        "SELECT {{ window_start | string }};",
        "SELECT {{ window_start.year }};",
        "{% set day = window_start %}SELECT {{ day }};",
        "{% for slot in [1, 2] %}SELECT {{ slot }};{% endfor %}",
        "SELECT {{ slot if rerun else window_end }};",
        "SELECT {{ (window_end - window_start).days }};",
    ],
    ids=["condition", "filter", "attribute", "assignment", "loop-target", "expression", "call"],
)
def test_a_template_that_uses_a_slot_value_beyond_a_bind_is_rendered_in_full_every_run(
    source: str,
) -> None:
    assert sqltemplates.prepare(probe_job(), source) is None


def test_a_prepared_template_keeps_its_slot_free_parts_and_fills_each_slot() -> None:
    source = (
        "{% if rerun %}DELETE FROM {{ params.table | ident }};{% endif %}\n"
        "INSERT INTO {{ params.table | ident }} SELECT {{ window_start }}, {{ window_end }}"
        " LIMIT {{ params.limit }};"
    )
    job = probe_job()
    slot = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
    for rerun in (False, True):
        prepared = sqltemplates.prepare(job, source, rerun=rerun)
        assert prepared is not None
        filled = prepared.fill(job, slot)
        assert filled.args == (slot - timedelta(hours=1), slot, 5)
        assert ("DELETE" in filled.sql) is rerun
