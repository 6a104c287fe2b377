"""The job templates in sql/: they render for every job of jobs.yaml with values only
as bind parameters, take their window from the slot (never the clock), and write
through idempotent upserts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from engine import manifest
from engine.core.errors import TemplateError
from engine.core.model import Job, Period, Window
from engine.sql import sqltemplates

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = manifest.load(ROOT / "jobs.yaml")
JOBS = {j.name: j for j in MANIFEST.jobs}
SLOT = datetime(2026, 3, 1, 0, tzinfo=UTC)
CLOCK = re.compile(
    r"\b(now\s*\(|current_date|current_timestamp|current_time|localtime|localtimestamp"
    r"|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday)",
    re.IGNORECASE,
)
TEMPLATES = sorted({j.template for j in MANIFEST.jobs})


def source(job: Job) -> str:
    return (ROOT / job.template).read_text()


def code(sql: str) -> str:
    """The statement without its comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def rendered(name: str, slot: datetime = SLOT) -> list[sqltemplates.Rendered]:
    job = JOBS[name]
    return sqltemplates.split_statements(sqltemplates.render(job, source(job), slot))


def test_every_sql_template_is_used_by_a_job() -> None:
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "sql").glob("*.sql")) == TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_uses_only_runtime_variables(template: str) -> None:
    assert sqltemplates.check_source((ROOT / template).read_text()) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_never_reads_the_clock(template: str) -> None:
    assert CLOCK.findall((ROOT / template).read_text()) == []


@pytest.mark.parametrize("name", sorted(JOBS))
def test_rendered_statements_carry_values_only_as_bind_parameters(name: str) -> None:
    for st in rendered(name):
        numbers = sorted({int(n) for n in re.findall(r"\$(\d+)", st.sql)})
        assert numbers == list(range(1, len(st.args) + 1))
        # times as aware datetimes, settle_seconds as an int
        assert all(
            (isinstance(a, datetime) and a.tzinfo is not None) or type(a) is int for a in st.args
        )
        # no literal date or time from the slot made it into the text
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\b\d\d:\d\d\b", st.sql), st.sql
        # an aware datetime must not meet a bare timestamp parameter (asyncpg rejects it)
        for m in re.finditer(r"\$(\d+)", st.sql):
            cast = "::int" if type(st.args[int(m[1]) - 1]) is int else "::timestamptz"
            assert st.sql[m.end() :].startswith(cast), st.sql


@pytest.mark.parametrize(
    ("name", "slot", "values"),
    [
        (
            "aggregate-hourly",
            datetime(2026, 10, 31, 0, tzinfo=UTC),
            # the window and the slot, window.settle_seconds and params.catch_up_days
            {datetime(2026, 10, 30, 23, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC), 3600, 3},
        ),
        (
            "generate-daily-reports",
            datetime(2026, 10, 31, 2, tzinfo=UTC),
            {datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)},
        ),
        (
            "monthly-usage-summary",
            datetime(2026, 3, 1, 3, tzinfo=UTC),
            {datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)},
        ),
        (
            "score-distribution",
            datetime(2026, 10, 30, 4, tzinfo=UTC),
            {datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 10, 30, 4, tzinfo=UTC)},
        ),
        (
            "enrichment-metrics",
            datetime(2026, 10, 31, 5, tzinfo=UTC),
            {
                datetime(2026, 10, 30, tzinfo=UTC),
                datetime(2026, 10, 31, tzinfo=UTC),
                datetime(2026, 10, 31, 5, tzinfo=UTC),
            },
        ),
        (
            "warmup-daily-reset",
            datetime(2026, 10, 30, tzinfo=UTC),
            {datetime(2026, 10, 30, tzinfo=UTC)},
        ),
    ],
)
def test_window_values_come_from_the_slot(name: str, slot: datetime, values: set[datetime]) -> None:
    assert {a for st in rendered(name, slot) for a in st.args} == values


@pytest.mark.parametrize("name", sorted(n for n, j in JOBS.items() if j.action is None))
def test_sql_job_writes_through_an_upsert_on_its_natural_key(name: str) -> None:
    writes = [code(st.sql) for st in rendered(name) if re.match(r"(WITH|INSERT)\b", code(st.sql))]
    assert writes
    for sql in writes:
        if sql.startswith(
            "INSERT INTO analytics.event_rollup_days (date, aggregated_until)\nSELECT"
        ):
            # The hourly job's bookkeeping: open a missing day's mark, keep an existing one.
            assert sql.endswith("ON CONFLICT (date) DO NOTHING"), sql
            continue
        assert re.search(r"\bON CONFLICT \([a-z_, ]+\) DO UPDATE\b", sql), sql


def test_warmup_query_selects_organization_and_domain() -> None:
    (st,) = rendered("warmup-daily-reset")
    assert st.sql.startswith("SELECT d.organization_id, d.domain\n")


def test_hourly_template_locks_each_day_before_it_reads_the_mark() -> None:
    # Pass 0 opens days an outage swallowed; pass 1 locks the pending days, then
    # re-aggregates one per statement (catch_up_days: 3); pass 2 locks the window's day,
    # then (after pinning its plan's grouping to sorts) adds to it.
    kinds = [code(st.sql).split(None, 1)[0] for st in rendered("aggregate-hourly")]
    assert kinds == ["SET", "INSERT", "UPDATE", *["WITH"] * 3, "INSERT", "SET", "WITH"]


def test_hourly_rerun_locks_the_windows_day_and_replaces_it_instead_of_adding() -> None:
    job = JOBS["aggregate-hourly"]
    statements = sqltemplates.split_statements(
        sqltemplates.render(job, source(job), SLOT, rerun=True)
    )
    kinds = [code(st.sql).split(None, 1)[0] for st in statements]
    assert kinds == ["SET", "INSERT", "UPDATE", "INSERT", *["WITH"] * 4]
    assert "recomputing" in statements[-2].sql
    assert all("ea.count + EXCLUDED.count" not in st.sql for st in statements)


def test_parameter_value_like_an_injection_renders_as_a_bind_parameter() -> None:
    value = "'); DROP TABLE x; --"
    job = Job(
        name="note",
        type="test.note",
        cron="0 * * * *",
        sql="sql/note.sql",
        window=Window(period=Period.DAY),
        params=MappingProxyType({"label": value}),
    )
    out = sqltemplates.render(job, "INSERT INTO t (label) VALUES ({{ params.label }});\n", SLOT)
    assert out == sqltemplates.Rendered(sql="INSERT INTO t (label) VALUES ($1);\n", args=(value,))


def test_statements_split_at_top_level_semicolons_only() -> None:
    rendered = sqltemplates.render_source(
        "INSERT INTO a VALUES ({{ slot }});  -- first; not a statement\n"
        "SELECT pg_sleep(1); SELECT ';', '$1', $body$ a; b $body$ /* c; d */;\n"
        "UPDATE a SET x = {{ slot }} WHERE y = {{ params.name | ident }};\n",
        {"slot": 7, "params": {"name": 'x";\nDROP TABLE y; --'}},
    )
    assert [(st.sql, st.args) for st in sqltemplates.split_statements(rendered)] == [
        ("INSERT INTO a VALUES ($1)", (7,)),
        ("-- first; not a statement\nSELECT pg_sleep(1)", ()),
        ("SELECT ';', '$1', $body$ a; b $body$ /* c; d */", ()),
        ('UPDATE a SET x = $1 WHERE y = "x"";\nDROP TABLE y; --"', (7,)),
    ]


def test_a_template_of_only_comments_has_no_statements() -> None:
    rendered = sqltemplates.render_source("-- nothing;\n/* here; */\n;\n", {})
    assert sqltemplates.split_statements(rendered) == []


def test_a_template_reaching_for_class_fails_to_render_in_the_sandbox() -> None:
    with pytest.raises(TemplateError) as caught:
        sqltemplates.render_source("SELECT {{ slot.__class__ }};", {"slot": SLOT}, name="t.sql")
    assert str(caught.value) == (
        "t.sql: access to attribute '__class__' of 'datetime' object is unsafe."
    )


def test_rerun_shapes_the_statement_and_defaults_to_false() -> None:
    job = JOBS["aggregate-hourly"]
    source = "SELECT 1{% if rerun %} /* recompute */{% endif %} WHERE x = {{ slot }};"
    plain = sqltemplates.render(job, source, SLOT)
    rerun = sqltemplates.render(job, source, SLOT, rerun=True)
    assert (plain.sql, plain.args) == ("SELECT 1 WHERE x = $1;\n", (SLOT,))
    assert (rerun.sql, rerun.args) == ("SELECT 1 /* recompute */ WHERE x = $1;\n", (SLOT,))
    assert sqltemplates.context_for(job, SLOT)["rerun"] is False


def test_hourly_probe_keys_each_triple_exactly_as_its_index_does() -> None:
    # The "counted already today?" probe only descends contact_activity_day_triple_idx
    # if it compares the index's own key (the day, then the triple's hash), and only walks
    # it in order if the new events are grouped by that hash and sorted on it first; a
    # template edited apart from the migration would probe a slower index (or none), or
    # in no order, without any count changing.
    migration = (ROOT / "sql" / "migrations" / "0005_day_triple_index.sql").read_text()
    key = re.search(
        r"\(\(created_at::date\),\s*(hashtextextended\(.*\)),\s*created_at\)\s*INCLUDE",
        code(migration),
        re.DOTALL,
    )
    assert key is not None
    expression = re.sub(r"\s+", "", key[1])
    columns = re.compile(r"\b(event_type|contact_id|organization_id)\b")
    probe, event = (columns.sub(rf"{alias}.\1", expression) for alias in ("p", "n"))
    (main,) = [st.sql for st in rendered("aggregate-hourly") if "per_contact AS" in st.sql]
    flat = re.sub(r"\s+", "", code(main))
    assert f"WHEREp.created_at::date=(SELECTdateFROMday)AND{probe}=t.hashAND" in flat
    assert f"SELECT{event}AShash," in flat
    assert "GROUPBY1,2,3,4ORDERBY1)ASt" in flat


def test_readme_builds_the_day_triple_index_exactly_as_its_migration_does() -> None:
    # A user with a large table builds 0005's index by hand, concurrently, from the README;
    # the migration's IF NOT EXISTS then keeps whatever was built, so a README that drifted
    # from the migration would leave a slower index, or one the probe cannot use.
    def definition(sql: str, verb: str) -> str:
        found = re.search(
            rf"CREATE INDEX {verb} (contact_activity_day_triple_idx.*?);", sql, re.DOTALL
        )
        assert found is not None, verb
        return re.sub(r"\s+", " ", found[1])

    migration = (ROOT / "sql" / "migrations" / "0005_day_triple_index.sql").read_text()
    readme = (ROOT / "README.md").read_text()
    assert definition(readme, "CONCURRENTLY") == definition(code(migration), "IF NOT EXISTS")
    assert "DROP INDEX CONCURRENTLY analytics.contact_activity_triple_hash_idx;" in readme
    assert "DROP INDEX IF EXISTS analytics.contact_activity_triple_hash_idx;" in migration
