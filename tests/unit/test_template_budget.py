"""A template's render runs under a budget (engine/sql/sqlbudget.py): loops, calls and
filters are counted, every value an operator, call or filter would make is estimated
before it is made, and joined text is charged. Whatever a template does, its render ends
in milliseconds with a located error, at validation and at run time alike."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.core.errors import TemplateError
from engine.manifest.loader import load
from engine.sql import sqltemplates
from tests.unit.test_manifest_validation import BASE, TEMPLATE, problems

ROOT = Path(__file__).resolve().parents[2]
SLOT = datetime(2026, 1, 1, tzinfo=UTC)
CONTEXT = {
    "slot": SLOT,
    "window_start": SLOT,
    "window_end": SLOT,
    "params": {"cols": ["a", "b"], "s": "x" * 100_000},
    "job": {"name": "j", "type": "t"},
    "settle_seconds": 0,
    "rerun": False,
}
STEPS = (
    "render stopped: took more than 100000 steps (loop iterations, calls and filters); "
    "a template shapes one statement: loop over params, and leave bulk work to the SQL"
)


def would_build(size: int) -> str:
    return (
        f"render stopped: would build a value of about {size} characters or items, over the "
        "10000000 a render may build; a template shapes one statement: loop over params, "
        "and leave bulk work to the SQL"
    )


def failure(source: str) -> str:
    started = time.process_time()
    with pytest.raises(TemplateError) as caught:
        sqltemplates.render_source(source, CONTEXT, name="t.sql")
    assert time.process_time() - started < 2
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "SELECT 1;\n{% for a in range(100000) %}{% for b in range(100000) %}\n"
            "{% endfor %}{% endfor %}",
            f"t.sql: line 2: {STEPS}",
        ),
        ('{{ "x" * 3000000000 }}', f"t.sql: line 1: {would_build(3000000000)}"),
        ('{% set n = 3 * 10 ** 9 %}\n{{ "x" * n }}', f"t.sql: line 2: {would_build(3000000000)}"),
        ('{{ "x"|center(3000000000) }}', f"t.sql: line 1: {would_build(6000000002)}"),
        ('{{ "x".ljust(3000000000) }}', f"t.sql: line 1: {would_build(6000000002)}"),
        ('{{ "{:>3000000000}".format(1) }}', f"t.sql: line 1: {would_build(6000000002)}"),
        ('{{ "%3000000000s" % "x" }}', f"t.sql: line 1: {would_build(3000000013)}"),
        ('{{ "%3000000000s"|format("x") }}', f"t.sql: line 1: {would_build(6000000002)}"),
        # a hundred thousand references to one long string, joined
        (
            '{{ range(100000)|map(attribute="none", default=params.s)|join }}',
            f"t.sql: line 1: {would_build(10000700010)}",
        ),
        ('{{ params.s.replace("", params.s) }}', f"t.sql: line 1: {would_build(10000200001)}"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "t.sql: line 1: render stopped: joined more than 10000000 characters or items in "
            "all (text joined and values computed); a template shapes one statement: loop "
            "over params, and leave bulk work to the SQL",
        ),
        (
            "{{ 3 ** 3000000 }}",
            "t.sql: line 1: render stopped: would make a number of about 3000000 digits "
            "(at most 4300); a template shapes one statement: loop over params, and leave "
            "bulk work to the SQL",
        ),
        (
            "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}\n{{ m(0) }}",
            "t.sql: line 1: render stopped: recursion deeper than Python allows; give a macro "
            "that calls itself a condition that ends it",
        ),
        (
            "SELECT 1;\n{{ 1 / 0 }}",
            "t.sql: line 2: ZeroDivisionError: division by zero; fix the template at that line",
        ),
        ("{{ lipsum(100000) }}", "t.sql: 'lipsum' is undefined"),
    ],
)
def test_a_template_over_its_budget_stops_with_its_line(source: str, message: str) -> None:
    assert failure(source) == message


def test_a_template_within_its_budget_renders_as_before() -> None:
    source = (
        "SELECT {{ params.cols|join(', ') }} FROM t WHERE at >= {{ window_start }}"
        "{% for c in params.cols %} AND {{ c|ident }} IS NOT NULL{% endfor %}"
        " -- {{ 'a' ~ 'b' }} {{ (params.s|length) * 2 }};"
    )
    rendered = sqltemplates.render_source(source, CONTEXT)
    assert rendered.sql == (
        'SELECT $1 FROM t WHERE at >= $2 AND "a" IS NOT NULL AND "b" IS NOT NULL -- $3 $4;\n'
    )
    assert rendered.args == ("a, b", SLOT, "ab", 200_000)


def test_a_loop_of_the_budgets_size_still_renders() -> None:
    source = "{% for i in range(99990) %}{% endfor %}SELECT 1;"
    assert sqltemplates.render_source(source, CONTEXT).sql == "SELECT 1;\n"


def test_nothing_is_computed_while_a_template_compiles() -> None:
    # Jinja folds constant expressions when it compiles; ours must wait for the budget.
    source = '{{ "x"|center(3000000000) }}{{ "x" * 3000000000 }}{{ 10 ** 10 ** 10 }}'
    assert sqltemplates.check_source(source) == []


def test_a_budget_error_at_validation_names_the_job_the_template_and_the_line(
    tmp_path: Path,
) -> None:
    nested = "SELECT 1;\n{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\n"
    assert problems(tmp_path, BASE, {"hourly.sql": TEMPLATE, "nightly.sql": nested}) == [
        f"jobs.yaml:25:10: jobs.nightly.sql: template sql/nightly.sql: line 2: {STEPS}",
    ]


def test_the_budget_bounds_memory_in_a_process_that_would_otherwise_need_gigabytes() -> None:
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from engine.core.errors import TemplateError\n"
        "from engine.sql import sqltemplates\n"
        "for source in sys.argv[1:]:\n"
        "    try:\n"
        "        sqltemplates.render_source(source, {})\n"
        "    except TemplateError:\n"
        "        pass\n"
        "print('done')\n"
    )
    sources = [
        '{{ "x" * 3000000000 }}',
        '{% set s = "x" * 1000000 %}{{ [s] * 5000 }}',
        '{% set s = "x" * 1000000 %}{{ range(5000)|map(attribute="n", default=s)|join }}',
    ]
    done = subprocess.run(
        [sys.executable, "-c", code, *sources], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")


def test_render_of_a_slot_whose_window_leaves_the_calendar_is_a_one_line_error() -> None:
    # The command refuses such a slot before rendering (the sane range of slots) ...
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main(["-m", str(ROOT / "jobs.yaml"), "render", "analytics.aggregate-hourly",
              "--at", "0001-01-01T00:00:00Z"])  # fmt: skip
    assert (exited.value.code, err.getvalue()) == (
        2,
        "cronwright render: error: argument --at: 0001-01-01T00:00:00Z is before"
        " 1970-01-01T00:00:00Z, the earliest slot; give a time from 1970-01-01T00:00:00Z to a"
        " year after now\n",
    )
    # ... and the renderer itself, reached some other way, says so in one line.
    job = load(ROOT / "jobs.yaml").find_job("aggregate-hourly")
    source = (ROOT / job.template).read_text()
    with pytest.raises(TemplateError) as caught:
        sqltemplates.render(job, source, datetime(1, 1, 1, tzinfo=UTC))
    assert str(caught.value) == (
        "sql/aggregate_hourly.sql: the window of slot 0001-01-01T00:00:00+00:00 lies outside"
        " the calendar; use a slot between 1970 and 9999"
    )
