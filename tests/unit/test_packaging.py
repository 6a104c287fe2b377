"""The wheel carries the licences, the migrations and the manifest's schema, and builds
without setuptools warnings about package data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "THIRD_PARTY_NOTICES.md")


def test_the_wheel_ships_the_licences_the_migrations_and_the_schema(tmp_path: Path) -> None:
    # Build from a copy, so the repo gets no build/ or egg-info.
    src = tmp_path / "src"
    shutil.copytree(REPO / "engine", src / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    for name in SOURCES:
        shutil.copy(REPO / name, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-v", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "would be ignored" not in build.stdout + build.stderr
    assert "Cannot find any files" not in build.stdout + build.stderr

    (wheel,) = tmp_path.glob("cronwright-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        licence = z.read("cronwright-0.1.0.dist-info/licenses/LICENSE").decode()
        notices = z.read("cronwright-0.1.0.dist-info/licenses/THIRD_PARTY_NOTICES.md").decode()
    migrations = sorted(p.name for p in (REPO / "engine" / "migrations").glob("*.sql"))
    assert migrations
    assert {f"engine/migrations/{name}" for name in migrations} <= names
    assert "engine/manifest/jobs.schema.json" in names
    console = REPO / "engine" / "app" / "console"
    pages = sorted(
        str(p.relative_to(REPO))
        for folder in ("templates", "static")
        for p in (console / folder).iterdir()
        if p.suffix in (".html", ".css", ".js")
    )
    assert len(pages) > 8  # the web console's templates, stylesheet and script
    assert set(pages) <= names
    assert licence == (REPO / "LICENSE").read_text()
    assert "Copyright (c) 2026 the cronwright authors" in licence
    assert notices == (REPO / "THIRD_PARTY_NOTICES.md").read_text()
    assert "Copyright (c) 2020 Cloudflare, Inc." in notices
    assert "Neither the name of the copyright holder" in notices  # BSD-3-Clause's third clause


def test_each_ported_module_points_to_the_notice() -> None:
    schedule = REPO / "engine" / "schedule"
    for name in ("cron.py", "cronfields.py", "cronparse.py"):
        head = (schedule / name).read_text().split('"""')[1]
        assert "Copyright (c) 2020 Cloudflare, Inc." in head, name
        assert "THIRD_PARTY_NOTICES.md" in head, name
