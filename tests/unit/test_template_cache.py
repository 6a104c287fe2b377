"""The on-disk cache of compiled templates (engine/sql/sqlcache.py): a later process uses
what an earlier one compiled, with exactly the same renders and findings; a change to the
text or to the code that compiles it misses; a missing, corrupt or unwritable cache is a
miss and never an error; a template that does not compile is never stored."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.app.cli import main
from engine.sql import sqlcache, sqlsandbox, sqltemplates

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = sorted((ROOT / "sql").glob("*.sql"))
CONTEXT: dict[str, Any] = {
    "slot": datetime(2026, 3, 1, 10, tzinfo=UTC),
    "window_start": datetime(2026, 3, 1, 9, tzinfo=UTC),
    "window_end": datetime(2026, 3, 1, 10, tzinfo=UTC),
    "settle_seconds": 0,
    "rerun": False,
    "params": {"table": "a.b", "days": 7},
    "job": {"name": "j", "type": "t"},
}
PIECES = [  # what templates are made of, broken ones included
    "SELECT ",
    "{{ slot }}",
    "{{ window_start }}",
    ", ",
    "{{ params.table | ident }}",
    "{% if rerun %}DELETE;{% endif %}",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{{ params.days * 2 }}",
    "{{ job.name ~ 'x' }}",
    "\n",
    "{{ ",
    "}}",
    "{% if %}",
    "{{ params | nofilter }}",
    "{{ 1 / 0 }}",
    "{{ missing }}",
]
HOSTILE = "{{ window_start.__class__ }} {{ params['_x'] }} {{ nope }} {{ slot }}"


def forget() -> None:
    """What this process remembers, so that the next call reads the disk or compiles."""
    sqltemplates._compiled.cache_clear()
    sqltemplates._parsed.cache_clear()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CRONWRIGHT_CACHE_DIR", str(folder))
    forget()
    yield folder
    forget()


def entries(folder: Path) -> list[Path]:
    return sorted((folder / "templates").glob("*.bin")) if folder.exists() else []


def findings(source: str) -> tuple[Any, ...]:
    """Everything validation and a run take from a compiled template."""
    try:
        rendered: object = sqltemplates.render_source(source, CONTEXT)
    except Exception as exc:  # the same failure, cold or warm
        rendered = (type(exc).__name__, str(exc))
    return rendered, sqltemplates.check_source(source), sqltemplates.variables_read(source)


def no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("compiled a template the cache holds")

    monkeypatch.setattr(sqlsandbox, "compile_ast", refuse)


@pytest.mark.parametrize("path", EXAMPLE, ids=lambda p: p.name)
def test_a_cached_template_renders_and_checks_exactly_as_a_compiled_one(
    path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = path.read_text(encoding="utf-8")
    cold = findings(source)
    assert len(entries(cache)) == 1
    forget()
    no_compiling(monkeypatch)
    assert findings(source) == cold


def test_a_template_reaching_for_private_names_is_refused_the_same_from_the_cache(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = sqltemplates.check_source(HOSTILE)
    assert [problem for problem, _ in cold] == [
        "line 1: reaches for '__class__', which the template sandbox forbids",
        "line 1: reaches for '_x', which the template sandbox forbids",
        "uses undefined variable 'nope' (the runtime provides job, params, rerun,"
        " settle_seconds, slot, window_end, window_start)",
    ]
    forget()
    no_compiling(monkeypatch)
    assert sqltemplates.check_source(HOSTILE) == cold


@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join))
def test_any_template_gives_the_same_findings_warm_as_cold(source: str) -> None:
    forget()
    cold = findings(source)
    forget()
    assert findings(source) == cold  # from the cache when it compiled


def test_a_template_that_does_not_compile_is_never_stored(cache: Path) -> None:
    for broken in ("{% if %}", "{{ params | nofilter }}", "{% for %}"):
        with pytest.raises(jinja2.TemplateSyntaxError):
            sqltemplates._compiled(broken)
    assert entries(cache) == []


def test_a_corrupt_or_truncated_entry_is_a_miss_and_is_written_again(cache: Path) -> None:
    source = EXAMPLE[0].read_text(encoding="utf-8")
    cold = findings(source)
    [entry] = entries(cache)
    good = entry.read_bytes()
    for bad in (b"", good[: len(good) // 2], b"\x00garbage", b"N"):  # N: marshal's None
        entry.write_bytes(bad)
        forget()
        assert findings(source) == cold
        assert entry.read_bytes() == good


def test_a_cache_that_cannot_be_written_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CRONWRIGHT_CACHE_DIR", str(blocker))
    forget()
    source = EXAMPLE[0].read_text(encoding="utf-8")
    assert findings(source)[1] == []
    assert blocker.read_text() == "not a folder"
    forget()


@pytest.mark.parametrize("off", ["off", "OFF", ""])
def test_the_cache_turned_off_writes_nothing(
    off: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRONWRIGHT_CACHE_DIR", off)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    forget()
    findings(EXAMPLE[0].read_text(encoding="utf-8"))
    assert list(tmp_path.iterdir()) == []
    forget()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CRONWRIGHT_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}, "/c"),
        ({"XDG_CACHE_HOME": "/x"}, "/x/cronwright"),
        ({"XDG_CACHE_HOME": ""}, str(Path.home() / ".cache" / "cronwright")),
        ({}, str(Path.home() / ".cache" / "cronwright")),
        ({"CRONWRIGHT_CACHE_DIR": " off "}, None),
    ],
)
def test_the_cache_folder_is_chosen_by_the_environment(
    environ: dict[str, str], expected: str | None
) -> None:
    found = sqlcache.folder(environ)
    assert (str(found) if found is not None else None) == expected


def test_the_cache_folder_is_its_owners_alone(cache: Path) -> None:
    findings(EXAMPLE[0].read_text(encoding="utf-8"))
    assert stat.S_IMODE((cache / "templates").stat().st_mode) == 0o700


def test_a_cache_folder_others_can_write_to_is_not_read(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = EXAMPLE[0].read_text(encoding="utf-8")
    cold = findings(source)
    (cache / "templates").chmod(0o777)
    forget()
    assert findings(source) == cold  # compiled again, not read
    forget()
    no_compiling(monkeypatch)
    with pytest.raises(AssertionError, match="compiled a template"):
        findings(source)


def test_a_change_to_the_code_that_compiles_templates_misses(cache: Path, tmp_path: Path) -> None:
    depends = sqltemplates._CACHE.depends
    assert {p.name for p in depends} == {"sqlbudget.py", "sqlsandbox.py", "sqltemplates.py"}
    changed = tmp_path / "sqlbudget.py"
    changed.write_bytes(depends[0].read_bytes() + b"\n# a new rule\n")
    source = EXAMPLE[0].read_text(encoding="utf-8")
    before = sqlcache.Cache(*depends).path(source)
    after = sqlcache.Cache(changed, *depends[1:]).path(source)
    assert before == sqltemplates._CACHE.path(source)
    assert after is not None and after != before
    assert sqlcache.Cache(*depends).path(source + " ") != before  # and so does the text


def test_a_second_validate_process_compiles_no_template(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "sql").mkdir(parents=True)
    for path in EXAMPLE:
        (project / "sql" / path.name).write_bytes(path.read_bytes())
    (project / "jobs.yaml").write_bytes((ROOT / "jobs.yaml").read_bytes())
    assert main(["-m", str(project / "jobs.yaml"), "validate"]) == 0
    assert len(entries(cache)) == len(EXAMPLE)
    forget()
    no_compiling(monkeypatch)
    assert main(["-m", str(project / "jobs.yaml"), "validate"]) == 0
