"""Python actions at the command line: ``check-actions`` imports each one and says, located
in jobs.yaml, what is wrong with it; ``validate`` and ``render`` import no project code;
``render`` says what a run would call, with its argument. And what a function may return."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.core.errors import JobFailed
from engine.runtime.pyaction import rows

GOOD = """\
import functools


async def sync(run):
    return 0


async def with_defaults(run, retries=3, *, verbose=False):
    return 0


async def _two(run, extra):
    return 0


class Exporter:
    async def __call__(self, run):
        return 0


partial = functools.partial(_two, extra=1)
callable_object = Exporter()
"""

BAD = """\
def plain(run):
    return 0


async def two(run, extra):
    return 0


async def none():
    return 0


limit = 5
"""


@pytest.fixture
def pkg() -> Iterator[str]:
    """A package name no other test imports; the process forgets it and the project's
    folder afterwards."""
    name = f"tasks_{uuid.uuid4().hex[:10]}"
    path = list(sys.path)
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]
    sys.path[:] = path


def write_project(root: Path, pkg: str, jobs: dict[str, str]) -> Path:
    """A package ``pkg`` with modules good.py, bad.py and broken.py (which fails to
    import), and a manifest of jobs: name -> target."""
    (root / pkg).mkdir()
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "good.py").write_text(GOOD)
    (root / pkg / "bad.py").write_text(BAD)
    (root / pkg / "broken.py").write_text("import json\nraise KeyError('CRM_TOKEN')\n")
    lines = ["version: 1", "jobs:"]
    for name, target in jobs.items():
        lines += [f"  {name}:", '    cron: "*/10 * * * *"', f'    action: {{python: "{target}"}}']
    manifest = root / "jobs.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_check_actions_accepts_async_callables_of_one_argument(
    tmp_path: Path, pkg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = [
        f"{pkg}.good:{name}" for name in ("sync", "with_defaults", "partial", "callable_object")
    ]
    manifest = write_project(tmp_path, pkg, {f"job-{i}": t for i, t in enumerate(targets)})
    assert main(["-m", str(manifest), "check-actions"]) == 0
    assert capsys.readouterr().out == f"{manifest}: ok (4 python actions: {', '.join(targets)})\n"


def test_check_actions_of_a_project_without_python_actions_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "purge.sql").write_text("DELETE FROM sessions WHERE at < {{ slot }};\n")
    (tmp_path / "jobs.yaml").write_text(
        'version: 1\njobs:\n  purge:\n    cron: "30 2 * * *"\n    sql: sql/purge.sql\n'
    )
    assert main(["-m", str(tmp_path / "jobs.yaml"), "check-actions"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'jobs.yaml'}: ok (no python actions)\n"


def test_check_actions_locates_every_problem_with_its_fix_and_exits_2(
    tmp_path: Path, pkg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_project(
        tmp_path,
        pkg,
        {
            "ok": f"{pkg}.good:sync",
            "missing": f"{pkg}.good:export",
            "sync": f"{pkg}.bad:plain",
            "two": f"{pkg}.bad:two",
            "none": f"{pkg}.bad:none",
            "limit": f"{pkg}.bad:limit",
            "broken": f"{pkg}.broken:sync",
            "taken": "yaml.tasks:go",
        },
    )
    # A package of a name cronwright loaded from elsewhere: Python looks for yaml.tasks
    # in the installed yaml, never in the project's.
    (tmp_path / "yaml").mkdir()
    (tmp_path / "yaml" / "__init__.py").write_text("")
    (tmp_path / "yaml" / "tasks.py").write_text("async def go(run):\n    return 0\n")
    assert main(["-m", str(manifest), "check-actions"]) == 2
    root = tmp_path.resolve()
    assert capsys.readouterr().err.splitlines() == [
        f"{manifest}:8:22: jobs.missing.action.python: {pkg}.good ({pkg}/good.py) has no"
        f" attribute 'export'; define async def export(run) in {pkg}/good.py, or fix the name",
        f"{manifest}:11:22: jobs.sync.action.python: {pkg}.bad:plain is not an async"
        " function; cronwright awaits what it returns; declare it async def plain(run)",
        f"{manifest}:14:22: jobs.two.action.python: {pkg}.bad:two(run, extra) cannot be called"
        " with one argument (the run); declare it async def two(run)",
        f"{manifest}:17:22: jobs.none.action.python: {pkg}.bad:none() cannot be called with"
        " one argument (the run); declare it async def none(run)",
        f"{manifest}:20:22: jobs.limit.action.python: {pkg}.bad:limit is an int, not a"
        f" function; define async def limit(run) in {pkg}/bad.py",
        f"{manifest}:23:22: jobs.broken.action.python: importing {pkg}.broken failed:"
        f" KeyError: 'CRM_TOKEN'; fix the module or what it imports; `python -c 'import"
        f" {pkg}.broken'` in {root} shows the traceback",
        f"{manifest}:26:22: jobs.taken.action.python: yaml is the module from"
        f" {sys.modules['yaml'].__file__}, not the project's: its name is taken; rename the"
        " project's package yaml",
        "7 problems found",
    ]


def test_validate_refuses_a_module_named_like_cronwrights_package_or_the_standard_librarys(
    tmp_path: Path, pkg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_project(tmp_path, pkg, {"mine": "engine.tasks:go", "json": "json:loads"})
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "tasks.py").write_text("async def go(run):\n    return 0\n")
    (tmp_path / "json.py").write_text("async def loads(run):\n    return 0\n")
    assert main(["-m", str(manifest), "validate"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{manifest}:5:22: jobs.mine.action.python: 'engine' is cronwright's own package:"
        " Python imports that one, never the project's engine; rename the project's package"
        " engine",
        f"{manifest}:8:22: jobs.json.action.python: 'json' is a standard library module:"
        " Python imports that one, never the project's json; rename the project's module json",
        "2 problems found",
    ]


def test_validate_imports_no_project_code(
    tmp_path: Path, pkg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_project(tmp_path, pkg, {"broken": f"{pkg}.broken:sync"})
    assert main(["-m", str(manifest), "validate"]) == 0
    assert capsys.readouterr().out == f"{manifest}: ok (1 job)\n"
    assert [m for m in sys.modules if m.startswith(pkg)] == []


def test_render_of_a_python_action_says_what_it_would_call_with_its_argument(
    tmp_path: Path, pkg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_project(tmp_path, pkg, {})
    manifest.write_text(
        'version: 1\njobs:\n  push:\n    cron: "5 * * * *"\n'
        f'    action: {{python: "{pkg}.broken:push"}}\n'
        "    window: {period: hour, offset: -1}\n    params: {url: https://crm.example.com}\n"
        '  ping:\n    cron: "0 * * * *"\n'
        f'    action: {{python: "{pkg}:ping"}}\n'
    )
    argv = ["-m", str(manifest), "render", "push", "--at", "2026-05-01T10:05Z"]
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        "# push slot 2026-05-01T10:05:00+00:00 window"
        " [2026-05-01T09:00:00+00:00, 2026-05-01T10:00:00+00:00)\n"
        f"# calls await push(run), from {pkg}/broken.py ({pkg}.broken:push), with run:\n"
        "run.job           'push'\n"
        "run.slot          2026-05-01T10:05:00+00:00\n"
        "run.window_start  2026-05-01T09:00:00+00:00\n"
        "run.window_end    2026-05-01T10:00:00+00:00\n"
        "run.params        {'url': 'https://crm.example.com'}\n"
        "run.rerun         False (True under `cronwright run --rerun`)\n"
        "run.connection    an asyncpg connection inside the job's transaction\n"
    )
    argv = ["-m", str(manifest), "render", "ping", "--at", "2026-05-01T10:00Z"]
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        "# ping slot 2026-05-01T10:00:00+00:00\n"
        f"# calls await ping(run), from {pkg}/__init__.py ({pkg}:ping), with run:\n"
        "run.job           'ping'\n"
        "run.slot          2026-05-01T10:00:00+00:00\n"
        "run.window_start  None (the job has no window)\n"
        "run.window_end    None\n"
        "run.params        {}\n"
        "run.rerun         False (True under `cronwright run --rerun`)\n"
        "run.connection    an asyncpg connection inside the job's transaction\n"
    )
    assert [m for m in sys.modules if m.startswith(pkg)] == []  # nothing imported


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0), (0, 0), (12, 12), (2**63 - 1, 2**63 - 1)]
)
def test_a_function_returns_the_rows_it_touched_or_none(value: int | None, expected: int) -> None:
    assert rows("tasks:sync", value) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "True (a bool)"),
        (-1, "-1 (an int)"),
        (2**63, "9223372036854775808 (an int)"),
        (1.5, "1.5 (a float)"),
        ("done", "'done' (a str)"),
        ({"rows": 3}, "{'rows': 3} (a dict)"),
    ],
)
def test_a_return_value_that_is_not_a_row_count_fails_the_run_permanently(
    value: object, shown: str
) -> None:
    with pytest.raises(JobFailed) as caught:
        rows("tasks:sync", value)
    assert (str(caught.value), caught.value.transient, caught.value.error_class) == (
        f"tasks:sync returned {shown}; return the number of rows it touched (an int from 0),"
        " or None",
        False,
        "python_action_result",
    )
