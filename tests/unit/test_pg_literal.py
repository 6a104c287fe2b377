"""engine.adapters.pgliteral: how ``$n`` markers become literals, and what is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.adapters.pgliteral import inline, literal
from engine.core.errors import DatabaseError


def test_ten_and_one_are_different_parameters() -> None:
    args = list(range(1, 11))
    assert inline("SELECT $10, $1", args) == "SELECT 10, 1"


def test_a_value_that_looks_like_a_marker_is_never_substituted_again() -> None:
    assert inline("SELECT $1, $2", ["$2", "x"]) == "SELECT E'$2', E'x'"


def test_quotes_and_backslashes_are_doubled_inside_an_escape_string() -> None:
    assert literal("it's a\\b") == "E'it''s a\\\\b'"


def test_a_missing_parameter_is_named() -> None:
    with pytest.raises(DatabaseError) as caught:
        inline("SELECT $1, $3", [1, 2])
    assert caught.value.message == "$3 has no parameter (2 given)"


def test_text_with_a_nul_character_is_refused_because_postgres_text_cannot_hold_it() -> None:
    with pytest.raises(DatabaseError) as caught:
        literal("a\x00b")
    assert caught.value.message == (
        "a text value contains a NUL character, which PostgreSQL text cannot hold"
    )


def test_a_type_without_a_literal_is_refused_by_name() -> None:
    with pytest.raises(DatabaseError) as caught:
        literal(Decimal("1.5"))
    assert caught.value.message == "cannot write a Decimal as a SQL literal"


def test_a_bool_is_a_boolean_not_an_integer() -> None:
    assert (literal(True), literal(False), literal(1)) == ("true", "false", "1")
