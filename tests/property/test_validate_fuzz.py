"""Fuzzing the commands that read a manifest (issue 18): whatever a project holds, the
CLI's validate, generate, check and render end with exit 0 or 2, never a traceback, every
error line located (``file:line:col:`` or at least ``file:``), in bounded time; and a few
real processes do the same under a 1 GB address-space limit."""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.app.cli import main
from tests.property.manifest_strategies import BAD_SQL, Project, projects

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    ["validate"],
    ["generate", "--out", "{out}"],
    ["check", "--out", "{out}"],
    ["render", "{type}", "--at", "2026-03-01T00:00:00Z"],
]


def write(root: Path, project: Project) -> Path:
    (root / "sql").mkdir()
    for rel, body in project.templates.items():
        target = root / rel
        with contextlib.suppress(OSError, ValueError):  # a path no file system takes
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    path = root / "jobs.yaml"
    path.write_bytes(project.manifest)
    return path


@dataclass(frozen=True)
class Measured:
    returncode: int
    stderr: str
    usage: resource.struct_rusage  # this one process's, from wait4


def bounded_validate(manifest: Path) -> Measured:
    """``cronwright validate`` in a process of its own under a 1 GiB address-space limit,
    reaped with ``wait4`` so that its CPU time and peak memory are its own (RUSAGE_CHILDREN
    would report the largest child the test session ever reaped, a browser included)."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    code = limit + "import sys; from engine.app.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "-m", str(manifest), "validate"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(60, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        return Measured(proc.returncode, err.read().decode("utf-8", "replace"), usage)


def unlocated(stderr: str, path: Path) -> list[str]:
    """Error lines that name no file: each must start with the manifest's or a
    template's path; the count line and the stale notice are the only others."""
    ok = re.compile(rf"^({re.escape(str(path.parent))}/\S|error: )")
    return [
        line
        for line in stderr.splitlines()
        if not ok.match(line)
        and not re.fullmatch(r"\d+ problems? found", line)
        and not line.endswith("is stale: run `make generate` and commit the result")
    ]


@pytest.mark.fuzz
@given(project=projects(), command=st.sampled_from(COMMANDS))
def test_no_project_makes_a_manifest_command_print_a_traceback(
    project: Project, command: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), project)
        args = [a.format(out=Path(tmp) / "out", type="any-job") for a in command]
        out, err = io.StringIO(), io.StringIO()
        started = time.process_time()  # CPU: wall time depends on the machine's load
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["-m", str(path), *args])
        assert time.process_time() - started < 10
        assert code in (0, 2), err.getvalue()
        assert "Traceback" not in err.getvalue()
        assert unlocated(err.getvalue(), path) == []


NASTY = {
    "alias bomb": b"version: 1\n"
    + b'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    + b"".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n".encode() for i in range(1, 10)),
    "deep nesting": b"version: 1\nx: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "huge string": b"version: 1\nworker: {name: '" + b"x" * 50_000_000 + b"'}\n",
    "latin-1": "version: 1\nworker: {name: 'caf\xe9'}\n".encode("latin-1"),
    "huge integer": b"version: 1\ntrigger_budget: " + b"9" * 100_000 + b"\n",
}


@pytest.mark.parametrize("name", sorted(NASTY))
def test_a_real_validate_process_refuses_a_hostile_manifest_within_bounds(
    name: str, tmp_path: Path
) -> None:
    (tmp_path / "jobs.yaml").write_bytes(NASTY[name])
    done = bounded_validate(tmp_path / "jobs.yaml")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert unlocated(done.stderr, tmp_path / "jobs.yaml") == []


@pytest.mark.parametrize("source", BAD_SQL)
def test_a_real_validate_process_refuses_a_hostile_template_within_bounds(
    source: str, tmp_path: Path
) -> None:
    base = (ROOT / "jobs.yaml").read_text(encoding="utf-8")
    (tmp_path / "jobs.yaml").write_text(base)
    (tmp_path / "sql").mkdir()
    for template in (ROOT / "sql").glob("*.sql"):
        (tmp_path / "sql" / template.name).write_text(source)
    done = bounded_validate(tmp_path / "jobs.yaml")
    assert done.usage.ru_utime + done.usage.ru_stime < 10  # CPU seconds of this process
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert unlocated(done.stderr, tmp_path / "jobs.yaml") == []
    assert done.usage.ru_maxrss < 1 << 20  # KiB: < 1 GiB
