"""Where a Postgres error becomes cronwright's: a missing ``cronwright`` schema, table or
function says to migrate and is permanent; every other error keeps its SQLSTATE class."""

from __future__ import annotations

import asyncpg
import pytest

from engine.adapters.pgerrors import translate, translated
from engine.core.errors import DatabaseError, NotMigrated

HINT = "cronwright's schema is missing or out of date: run cronwright db migrate"
RUN_SLOT = "function cronwright.run_slot(text, timestamp with time zone, integer) does not exist"


@pytest.mark.parametrize(
    ("exc", "rendered"),
    [
        (
            asyncpg.exceptions.InvalidSchemaNameError('schema "cronwright" does not exist'),
            f'invalid_schema_name (3F000): schema "cronwright" does not exist; {HINT}',
        ),
        (
            asyncpg.exceptions.UndefinedTableError('relation "cronwright.runs" does not exist'),
            f'undefined_table (42P01): relation "cronwright.runs" does not exist; {HINT}',
        ),
        (
            asyncpg.exceptions.UndefinedFunctionError(RUN_SLOT),
            f"undefined_function (42883): {RUN_SLOT}; {HINT}",
        ),
    ],
)
def test_a_missing_cronwright_object_is_permanent_and_says_to_migrate(
    exc: asyncpg.PostgresError, rendered: str
) -> None:
    err = translate(exc)
    assert isinstance(err, NotMigrated)
    assert (str(err), err.transient) == (rendered, False)


@pytest.mark.parametrize(
    ("exc", "rendered"),
    [
        (
            asyncpg.exceptions.UndefinedTableError('relation "app.effects" does not exist'),
            'undefined_table (42P01): relation "app.effects" does not exist',
        ),
        (
            asyncpg.exceptions.UndefinedTableError('relation "cronwright_app.t" does not exist'),
            'undefined_table (42P01): relation "cronwright_app.t" does not exist',
        ),
        (
            asyncpg.exceptions.InvalidSchemaNameError('schema "analytics" does not exist'),
            'invalid_schema_name (3F000): schema "analytics" does not exist',
        ),
        (
            asyncpg.exceptions.UndefinedFunctionError("function app.f(integer) does not exist"),
            "undefined_function (42883): function app.f(integer) does not exist",
        ),
        (
            asyncpg.exceptions.UndefinedFunctionError(
                "operator does not exist: cronwright.x = integer"
            ),
            "undefined_function (42883): operator does not exist: cronwright.x = integer",
        ),
    ],
)
def test_a_jobs_own_missing_object_keeps_its_plain_error(
    exc: asyncpg.PostgresError, rendered: str
) -> None:
    err = translate(exc)
    assert type(err) is DatabaseError
    assert (str(err), err.transient) == (rendered, False)


def test_a_statements_context_keeps_the_hint_to_migrate() -> None:
    with pytest.raises(NotMigrated) as caught, translated((), "cannot connect to db"):
        raise asyncpg.exceptions.InvalidSchemaNameError('schema "cronwright" does not exist')
    assert str(caught.value) == (
        f'cannot connect to db: invalid_schema_name (3F000): schema "cronwright" does not'
        f" exist; {HINT}"
    )
