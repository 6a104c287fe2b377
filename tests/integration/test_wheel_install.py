"""A new user's first minutes, from the wheel: build it, install it into a fresh venv
outside the repo (offline: --no-index, the already-installed dependencies beside it), then
from a new folder `cronwright init`, `validate`, `generate`, `db migrate`, one
`run --at`, and `serve` until two scheduled minutes have run, on a throwaway Postgres."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import asyncpg
import pytest
from packaging.requirements import Requirement

from tests.fixtures.aio import run
from tests.fixtures.postgres import PgServer, admin

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "THIRD_PARTY_NOTICES.md")
PROJECT_FILES = (
    "jobs.yaml",
    "cloudflare.yaml",
    "count_signups.sql",
    "0001_example_signups.sql",
    "gitignore",
)
STEP_TIMEOUT = 120.0
JOB = "count-signups"


def build_wheel(out: Path) -> Path:
    """The wheel, built from a copy of the sources (the repo gets no build/ or egg-info)."""
    src = out / "src"
    shutil.copytree(REPO / "engine", src / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    for name in SOURCES:
        shutil.copy(REPO / name, src / name)
    wheels = out / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = wheels.glob("cronwright-*.whl")
    return wheel


def dependency_closure(name: str) -> list[metadata.Distribution]:
    """The installed distributions ``name`` needs, transitively (markers evaluated, no
    extras), excluding ``name`` itself."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [
        Requirement(r)
        for r in metadata.distribution(name).requires or []
        if Requirement(r).marker is None or Requirement(r).marker.evaluate({"extra": ""})  # type: ignore[union-attr]
    ]
    while todo:
        req = todo.pop()
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(req.name)
        seen[key] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return list(seen.values())


def dependencies_dir(target: Path) -> Path:
    """A folder holding (as symlinks) exactly the installed files of cronwright's
    dependencies: what a fresh venv gets on its path instead of downloading them."""
    target.mkdir()
    for dist in dependency_closure("cronwright"):
        base = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            if not (target / top).exists() and (base / top).exists():
                (target / top).symlink_to(base / top)
    return target


def fresh_venv(root: Path, wheel: Path) -> Path:
    """A new venv outside the repo with the wheel installed from files alone."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=STEP_TIMEOUT)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=STEP_TIMEOUT,
    ).stdout.strip()
    deps = dependencies_dir(root / "deps")
    (Path(purelib) / "cronwright-deps.pth").write_text(f"{deps}\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links",
         str(wheel.parent), "cronwright"],
        capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return venv


@pytest.fixture
def empty_database(pg_server: PgServer) -> Iterator[str]:
    """A database with nothing in it: `db migrate` has not run."""
    name = f"wheel_{uuid.uuid4().hex[:12]}"
    run(admin(pg_server, f'CREATE DATABASE "{name}"'))
    try:
        yield pg_server.dsn(name)
    finally:
        run(admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def succeeded_slots(dsn: str) -> set[datetime]:
    async def fetch() -> set[datetime]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            rows = await conn.fetch(
                "SELECT slot FROM cronwright.runs WHERE job = $1 AND status = 'succeeded'", JOB
            )
        finally:
            await conn.close()
        return {r["slot"] for r in rows}

    return run(fetch())


def test_the_wheel_installs_into_a_fresh_venv_and_a_new_project_runs_its_slots(
    tmp_path: Path, empty_database: str
) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read("cronwright-0.1.0.dist-info/entry_points.txt").decode()
    assert "engine/manifest/jobs.schema.json" in names
    assert {f"engine/app/cli/project/{f}" for f in PROJECT_FILES} <= names
    migrations = {f"engine/migrations/{p.name}" for p in (REPO / "engine/migrations").glob("*.sql")}
    assert migrations and migrations <= names
    assert not any(n.startswith(("tests/", "devtools/", "sql/", "bench/")) for n in names)
    assert "[console_scripts]\ncronwright = engine.app.cli:main\n" in entry_points

    venv = fresh_venv(tmp_path, wheel)
    bin_dir = venv / "bin"
    project = tmp_path / "newcomer"
    project.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "DATABASE_URL": empty_database,
        "LANG": "C.UTF-8",
    }

    def cronwright(*args: str) -> str:
        done = subprocess.run(
            ["cronwright", *args], cwd=project, env=env, capture_output=True, text=True,
            timeout=STEP_TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"cronwright {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import engine; print(engine.__file__)"],
        cwd=project, env=env, capture_output=True, text=True, check=True, timeout=STEP_TIMEOUT,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv)), where  # the wheel's package, not the repo's

    assert cronwright("init").startswith("wrote project 'newcomer' in ./: jobs.yaml")
    assert cronwright("validate") == "jobs.yaml: ok (1 job)\n"
    assert cronwright("generate").startswith(
        "wrote generated/: JOBS.md, alerts.yml, dashboard.json\nskipped the Worker's"
    )
    applied = cronwright("db", "migrate")
    assert "0001_example_signups.sql" in applied, applied

    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    ran = cronwright("run", JOB, "--at", slot.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert ran == f"{JOB} slot {slot.strftime('%Y-%m-%dT%H:%M:%SZ')}: succeeded rows=1\n"

    started = datetime.now(UTC)
    first = started.replace(second=0, microsecond=0) + timedelta(minutes=1)
    wanted = {first, first + timedelta(minutes=1)}
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        ["cronwright", "serve", "--consumers", "2"], cwd=project, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + (max(wanted) - started).total_seconds() + 60
        while not wanted <= succeeded_slots(empty_database):
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert slot in succeeded_slots(empty_database)
    counted = run(_counted_minutes(empty_database))
    assert {s - timedelta(minutes=1) for s in wanted} <= counted
    assert not re.search(r"Traceback", (tmp_path / "serve.log").read_text())


async def _counted_minutes(dsn: str) -> set[datetime]:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        return {r["minute"] for r in await conn.fetch("SELECT minute FROM example.signup_counts")}
    finally:
        await conn.close()
