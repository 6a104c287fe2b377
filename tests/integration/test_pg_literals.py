"""Values written into our own statements as SQL literals (engine.adapters.pgliteral)
read back from a real PostgreSQL exactly as given, whatever they hold."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.adapters.pgliteral import inline, literal
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
    st.sampled_from(
        ["'", "''", "\\", "\\'", "E'", "$1", "$$", "--", "/*", ";", "'; DROP TABLE t; --"]
    ),
    st.datetimes(timezones=st.sampled_from([UTC])),
    st.datetimes(),
    st.uuids(),
)


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, str | float | datetime):  # not text for a number, nor the reverse
        return type(got) is type(want) and bool(got == want)
    return bool(got == want)


async def read_back(dsn: str, values: list[Any]) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT " + ", ".join(literal(v) for v in values))
        return list(row.values()) if row is not None else []
    finally:
        await conn.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(VALUES, min_size=1, max_size=20))
def test_every_value_written_as_a_literal_reads_back_as_itself(
    pg_dsn: str, values: list[Any]
) -> None:
    got = run(read_back(pg_dsn, values))
    assert len(got) == len(values)
    for g, v in zip(got, values, strict=True):
        assert same(g, v), (g, v, literal(v))


def test_a_negative_number_after_a_minus_stays_a_number_not_a_comment(pg_dsn: str) -> None:
    async def main() -> Any:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return await conn.fetchval(inline("SELECT 10-$1 -- the rest is a comment", [-5]))
        finally:
            await conn.close()

    assert run(main()) == 15


def test_literals_read_the_same_without_standard_conforming_strings(pg_dsn: str) -> None:
    tricky = ["a\\b", "it's", "\\'; SELECT 1; --", "\\\\'"]

    async def main() -> list[Any]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("SET standard_conforming_strings = off")
            row = await conn.fetchrow("SELECT " + ", ".join(literal(v) for v in tricky))
            return list(row.values()) if row is not None else []
        finally:
            await conn.close()

    assert run(main()) == tricky


def test_a_timestamp_keeps_its_microseconds_and_its_instant() -> None:
    t = datetime(2026, 10, 31, 10, 0, 0, 123456, tzinfo=UTC)
    assert literal(t) == "'2026-10-31T10:00:00.123456+00:00'::timestamptz"
