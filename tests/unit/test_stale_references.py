"""Comments and docs point at what exists: every file of the repo that engine/ or the
README names by its path is there, and a migration whose comments were corrected after
its release (engine.adapters.migrate.REWORDED) changed in its comments only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from engine.adapters.migrate import REWORDED

REPO = Path(__file__).resolve().parents[2]
# A path of the repo's own code, as comments name them (placeholders such as
# NNNN_name.sql, in capitals, are examples, not references).
NAMED = re.compile(
    r"\b(?:engine|tests|bench|devtools)/[a-z0-9_/.-]+\.(?:py|sql|json|js|mjs|html)\b"
)
# The statements (every line but the whole-line comments) of each corrected migration,
# hashed from its text as released.
STATEMENTS = {
    "engine:0001_cronwright.sql": "4cb6e337c9b61fe387dee00e024bd389cacb20ffe4ec05082ca06256fc6bced6",
    "engine:0007_run_slot.sql": "036c62b52ecc307515460885f8a7cf445a6da8f9921fbef846543ef57c99f4b1",
}


def named_paths() -> list[tuple[str, str]]:
    texts = [REPO / "README.md", *sorted((REPO / "engine").rglob("*.py"))]
    texts += sorted((REPO / "engine").rglob("*.sql"))
    return sorted(
        {
            (path, str(text.relative_to(REPO)))
            for text in texts
            for path in NAMED.findall(text.read_text())
        }
    )


def test_every_path_of_the_repo_that_engine_or_the_readme_names_exists() -> None:
    gone = [(path, where) for path, where in named_paths() if not (REPO / path).exists()]
    assert gone == []


@pytest.mark.parametrize("key", sorted(REWORDED))
def test_a_corrected_migration_changed_in_its_comments_only(key: str) -> None:
    text = (REPO / "engine" / "migrations" / key.split(":")[1]).read_text()
    statements = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    assert hashlib.sha256(statements.encode()).hexdigest() == STATEMENTS[key]
    assert hashlib.sha256(text.encode()).hexdigest() not in REWORDED[key]  # it was changed
