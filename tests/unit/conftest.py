from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repo's manifest, templates and generated/ to break at will."""
    shutil.copy(REPO / "jobs.yaml", tmp_path / "jobs.yaml")
    shutil.copytree(REPO / "sql", tmp_path / "sql")
    # Only what generate writes: not a .wrangler/ that a user's wrangler left beside it.
    shutil.copytree(
        REPO / "generated", tmp_path / "generated", ignore=shutil.ignore_patterns(".wrangler")
    )
    return tmp_path
