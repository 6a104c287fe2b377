"""Versioned migrations: applied once, in order, recorded with checksums, edits refused."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.adapters.migrate import engine_migrations, migrate_url
from engine.adapters.pg import Database
from engine.app import wiring
from engine.core.errors import ConfigError, DatabaseError
from tests.fixtures.aio import run
from tests.fixtures.postgres import PgServer, admin

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
#: cronwright's own migrations, in name order (they precede the project's).
ENGINE = [m.key for m in engine_migrations()]


@pytest.fixture
def empty_dsn(pg_server: PgServer) -> Iterator[str]:
    name = f"migrate_{uuid.uuid4().hex[:12]}"
    run(admin(pg_server, f'CREATE DATABASE "{name}"'))
    try:
        yield pg_server.dsn(name)
    finally:
        run(admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(sql)


async def fetch(dsn: str, sql: str) -> list[dict[str, object]]:
    async with Database.open(dsn, max_size=1) as db:
        return await db.fetch(sql)


FIRST = "CREATE SCHEMA app;\nCREATE TABLE app.a (id int PRIMARY KEY);\n"
SECOND = "CREATE TABLE app.b (a_id int REFERENCES app.a (id));\n"


def test_migrate_applies_cronwright_then_the_project_in_name_order(
    empty_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0002_b.sql", SECOND)
    write(tmp_path, "0001_a.sql", FIRST)
    applied = run(migrate_url(empty_dsn, tmp_path))
    assert applied == [*ENGINE, "project:0001_a.sql", "project:0002_b.sql"]
    rows = run(
        fetch(
            empty_dsn,
            "SELECT source, name, checksum FROM cronwright.schema_migrations"
            " WHERE source = 'project' ORDER BY name",
        )
    )
    assert rows == [
        {
            "source": "project",
            "name": "0001_a.sql",
            "checksum": hashlib.sha256(FIRST.encode()).hexdigest(),
        },
        {
            "source": "project",
            "name": "0002_b.sql",
            "checksum": hashlib.sha256(SECOND.encode()).hexdigest(),
        },
    ]
    tables = run(
        fetch(
            empty_dsn,
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
            " WHERE table_schema IN ('app', 'cronwright') ORDER BY 1",
        )
    )
    names = [str(r["t"]) for r in tables]
    assert [n for n in names if n.startswith("app.")] == ["app.a", "app.b"]
    assert {"cronwright.dead_letters", "cronwright.runs", "cronwright.schema_migrations"} <= set(
        names
    )


def test_rerunning_migrate_is_a_no_op_and_new_files_apply_alone(
    empty_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    run(migrate_url(empty_dsn, tmp_path))
    assert run(migrate_url(empty_dsn, tmp_path)) == []
    write(tmp_path, "0002_b.sql", SECOND)
    assert run(migrate_url(empty_dsn, tmp_path)) == ["project:0002_b.sql"]


def test_changed_applied_migration_is_an_error(empty_dsn: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    run(migrate_url(empty_dsn, tmp_path))
    edited = FIRST + "CREATE TABLE app.c (id int);\n"
    write(tmp_path, "0001_a.sql", edited)
    with pytest.raises(ConfigError) as caught:
        run(migrate_url(empty_dsn, tmp_path))
    old, new = (hashlib.sha256(s.encode()).hexdigest()[:12] for s in (FIRST, edited))
    assert str(caught.value) == (
        f"migration project:0001_a.sql changed after it was applied (applied sha256 {old},"
        f" file sha256 {new}); add a new migration instead of editing an applied one"
    )
    tables = run(fetch(empty_dsn, "SELECT to_regclass('app.c') IS NULL AS absent"))
    assert tables == [{"absent": True}]


def test_failed_migration_rolls_back_whole_and_is_not_recorded(
    empty_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    write(
        tmp_path,
        "0002_b.sql",
        "CREATE TABLE app.half (id int);\nCREATE TABLE app.b (x nosuchtype);\n",
    )
    with pytest.raises(DatabaseError) as caught:
        run(migrate_url(empty_dsn, tmp_path))
    assert (caught.value.error_class, caught.value.transient) == ("undefined_object", False)
    state = run(
        fetch(
            empty_dsn,
            "SELECT to_regclass('app.half') IS NULL AS half_absent,"
            " (SELECT count(*) FROM cronwright.schema_migrations WHERE source = 'project') AS n",
        )
    )
    assert state == [{"half_absent": True, "n": 1}]
    write(tmp_path, "0002_b.sql", SECOND)
    assert run(migrate_url(empty_dsn, tmp_path)) == ["project:0002_b.sql"]


def test_concurrent_migrators_apply_each_migration_once(empty_dsn: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    write(tmp_path, "0002_b.sql", SECOND)

    async def both() -> list[list[str]]:
        return list(
            await asyncio.gather(migrate_url(empty_dsn, tmp_path), migrate_url(empty_dsn, tmp_path))
        )

    first, second = run(both())
    assert sorted(first + second) == sorted([*ENGINE, "project:0001_a.sql", "project:0002_b.sql"])


def test_db_migrate_applies_the_repository_migrations(empty_dsn: str) -> None:
    applied = run(wiring.migrate(empty_dsn, ROOT))
    expected = [*ENGINE] + [
        f"project:{p.name}" for p in sorted((ROOT / "sql" / "migrations").glob("*.sql"))
    ]
    assert applied == expected
    assert run(wiring.migrate(empty_dsn, ROOT)) == []
