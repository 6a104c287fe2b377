"""cronwright's SQL lives in named blocks of engine/queries/*.sql: every name the code asks
for exists, every block is asked for somewhere, and no runtime or adapter module keeps a
statement of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.core.errors import ConfigError
from engine.core.queries import names, query

REPO = Path(__file__).resolve().parents[2]
ASKED = re.compile(r'query\("([\w.]+)"\)')
FILES = sorted(p.stem for p in (REPO / "engine" / "queries").glob("*.sql") if p.stem != "schema")


def asked() -> set[str]:
    return {m for p in (REPO / "engine").rglob("*.py") for m in ASKED.findall(p.read_text("utf-8"))}


def test_every_query_the_code_asks_for_exists() -> None:
    for name in sorted(asked()):
        assert query(name).strip(), name


def test_every_named_query_is_asked_for_somewhere() -> None:
    defined = {f"{file}.{block}" for file in FILES for block in names(file)}
    assert sorted(defined - asked()) == []


def test_an_unknown_query_name_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        query("ledger.nope")
    assert str(err.value) == "no query named 'ledger.nope' in engine/queries/"


def test_no_runtime_or_adapter_module_keeps_a_statement_of_its_own() -> None:
    statement = re.compile(r'(?:"""|"|\')\s*(SELECT|INSERT|UPDATE|DELETE|WITH|BEGIN|SET)\b')
    offenders = [
        str(p.relative_to(REPO))
        for folder in ("runtime", "adapters", "app")
        for p in (REPO / "engine" / folder).rglob("*.py")
        if statement.search(p.read_text("utf-8"))
    ]
    assert offenders == []
