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
    shutil.copytree(REPO / "generated", tmp_path / "generated")
    return tmp_path
