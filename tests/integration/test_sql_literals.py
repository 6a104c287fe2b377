"""The literals sent with a COMMIT (engine/sql/literals.py) mean, on a real Postgres and
whatever ``standard_conforming_strings`` says, exactly the value asyncpg binds as a
parameter (the oracle); a failing statement queued with ``at_commit`` commits nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from engine.adapters.pg import Database
from engine.core.errors import DatabaseError
from engine.sql.literals import literal
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

VALUES: list[tuple[Any, str]] = [
    (0, "bigint"),
    (-9_223_372_036_854_775_808, "bigint"),
    (0.1, "float8"),
    (-1.5e-05, "float8"),
    (123456.789, "float8"),
    (True, "boolean"),
    (None, "text"),
    (datetime(2026, 10, 31, 10, 0, tzinfo=UTC), "timestamptz"),
    (datetime(2026, 3, 29, 1, 30, 0, 250, tzinfo=timezone(timedelta(hours=-3))), "timestamptz"),
    (UUID("0b7e1c2a-58f4-4c8e-9c39-1d2b9a7f4e01"), "uuid"),
    ("aggregate-hourly", "text"),
    ("it's", "text"),
    ("back\\slash \\' and '' quotes", "text"),
    ("E'\\x27' $$ ; COMMIT; --", "text"),
    ("zoë 日本 \u2028", "text"),
    ("", "text"),
]


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_each_literal_equals_the_same_value_bound_as_a_parameter(
    pg_dsn: str, conforming: str
) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"SET standard_conforming_strings = {conforming}")
            for value, sql_type in VALUES:
                row = await conn.fetchrow(
                    f"SELECT ({literal(value)})::{sql_type} IS NOT DISTINCT FROM $1::{sql_type}"
                    f" AS same, ({literal(value)})::{sql_type} AS got",
                    value,
                )
                assert row is not None
                assert row["same"], (value, row["got"])
                assert row["got"] == value
        finally:
            await conn.close()

    run(main())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "invalid_parameter: float nan has no SQL literal"),
        (float("inf"), "invalid_parameter: float inf has no SQL literal"),
        (
            datetime(2026, 10, 31, 10, 0),
            "invalid_parameter: datetime 2026-10-31T10:00:00 has no time zone",
        ),
        ("a\x00b", "invalid_parameter: str holds a NUL character, which Postgres text cannot"),
        (b"bytes", "invalid_parameter: bytes has no SQL literal"),
    ],
)
def test_a_value_without_a_safe_literal_is_refused_and_not_retried(
    value: object, message: str
) -> None:
    with pytest.raises(DatabaseError) as info:
        literal(value)
    assert str(info.value) == message
    assert (info.value.transient, info.value.error_class) == (False, "invalid_parameter")


def test_statements_queued_at_commit_run_in_order_with_the_commit(pg_dsn: str) -> None:
    async def main() -> None:
        async with Database.open(pg_dsn) as db:
            async with db.transaction() as tx:
                await tx.execute("CREATE TABLE t (n int PRIMARY KEY, note text)")
                await tx.execute("INSERT INTO t VALUES (1, 'first')")
                tx.at_commit("UPDATE t SET note = note || ' then second' WHERE n = 1")
                tx.at_commit(f"INSERT INTO t VALUES (2, {literal(chr(39) + 'x')})")
            assert await db.fetch("SELECT n, note FROM t ORDER BY n") == [
                {"n": 1, "note": "first then second"},
                {"n": 2, "note": "'x"},
            ]

    run(main())


def test_a_failing_statement_queued_at_commit_commits_nothing(pg_dsn: str) -> None:
    async def main() -> None:
        async with Database.open(pg_dsn, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.execute("CREATE TABLE t (n int PRIMARY KEY)")
            with pytest.raises(DatabaseError) as info:
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO t VALUES (1)")
                    tx.at_commit("INSERT INTO t VALUES (2)")
                    tx.at_commit("INSERT INTO t VALUES (1)")  # the key is taken
                    tx.at_commit("INSERT INTO t VALUES (3)")
            assert str(info.value) == (
                "integrity_constraint_violation (23505): duplicate key value violates"
                ' unique constraint "t_pkey" DETAIL: Key (n)=(1) already exists.'
            )
            assert await db.fetch("SELECT n FROM t") == []
            # The pool's one connection came back outside the aborted transaction.
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (4)")
            assert await db.fetch("SELECT n FROM t") == [{"n": 4}]

    run(main())
