"""The house: no import cycles (lazy imports included), the layer check fails on a
violation, the tooling never imports the tests, and a module over 300 lines is pointed
out (a guide: modules are cut where an idea ends, not by a line count)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[2]
GUIDE_LINES = 300


class LongModuleWarning(UserWarning):
    """A module past the guide's length: worth a look, not a failure."""


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member, or a self-loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> modules of ``package`` it imports, at any depth in the file (grimp)."""
    g = grimp.build_graph(package, cache_dir=None)
    return {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import() -> None:
    g = grimp.build_graph("engine", cache_dir=None)
    # What r2config's lazy import of s3 used to be: s3 and s3client import r2config.
    g.add_import(importer="engine.adapters.r2config", imported="engine.adapters.s3")
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    assert strongly_connected(graph) == [
        ["engine.adapters.r2config", "engine.adapters.s3", "engine.adapters.s3client"]
    ]


def test_engine_has_no_import_cycles_lazy_imports_included() -> None:
    assert strongly_connected(import_graph("engine")) == []


def test_grimp_sees_imports_inside_functions() -> None:
    # wiring imports the R2 store only inside store_from_env: the graph must hold it.
    graph = import_graph("engine")
    assert "engine.adapters.s3" in graph["engine.app.wiring"]


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def test_modules_over_300_lines_are_pointed_out_without_failing() -> None:
    lengths = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in python_files("engine", "devtools")
    }
    too_long = sorted((name, n) for name, n in lengths.items() if n > GUIDE_LINES)
    assert lengths  # the walk found the modules
    with warnings.catch_warnings():
        warnings.simplefilter("always", LongModuleWarning)
        for name, n in too_long:
            warnings.warn(f"{name}: {n} lines (guide: {GUIDE_LINES})", LongModuleWarning, 1)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_layer_check_fails_on_an_upward_or_a_forbidden_lazy_import(tmp_path: Path) -> None:
    shutil.copytree(REPO / "engine", tmp_path / "engine", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    clean = lint_imports(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Contracts: 2 kept, 0 broken." in clean.stdout

    times = tmp_path / "engine" / "core" / "times.py"
    times.write_text(
        times.read_text()
        + "\n\ndef _upward() -> object:\n"
        + "    from engine.app import wiring\n\n    return wiring\n"
    )
    slots = tmp_path / "engine" / "schedule" / "slots.py"
    slots.write_text(
        slots.read_text() + "\n\ndef _client() -> object:\n    import boto3\n\n    return boto3\n"
    )
    broken = lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "Contracts: 0 kept, 2 broken." in broken.stdout
    assert "engine.core.times -> engine.app.wiring" in broken.stdout
    assert "engine.schedule.slots -> boto3" in broken.stdout


def imported_modules(path: Path) -> Iterable[str]:
    """Every module ``path`` imports, at any depth (lazy imports too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def importers_of(prefix: str, files: Iterable[Path], base: Path = REPO) -> list[str]:
    return sorted(
        f"{p.relative_to(base)}: {m}"
        for p in files
        for m in imported_modules(p)
        if m == prefix or m.startswith(prefix + ".")
    )


def test_the_import_finder_sees_lazy_imports_of_tests(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import testsuite\n\n\ndef f() -> None:\n    from tests.fixtures import aio\n"
        "    import tests\n"
    )
    assert importers_of("tests", [probe], tmp_path) == [
        "probe.py: tests",
        "probe.py: tests.fixtures",
    ]


def test_bench_demo_and_devtools_never_import_tests() -> None:
    assert importers_of("tests", python_files("bench", "demo", "devtools")) == []


def test_engine_never_imports_devtools_or_tests() -> None:
    files = python_files("engine")
    assert importers_of("devtools", files) + importers_of("tests", files) == []


def test_no_two_classes_of_engine_share_a_name() -> None:
    # Two Tallies, Settings, Backoffs and Budgets once meant one word for two ideas: a
    # reader (or an import) took one for the other.
    where: dict[str, list[str]] = {}
    for path in sorted((REPO / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(REPO)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
