"""Versioned migrations: applied once, in order, recorded with checksums, edits refused."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from engine.adapters.migrate import REWORDED, engine_migrations, migrate_url
from engine.adapters.pg import Database
from engine.app import wiring
from engine.app.cli import main
from engine.core.errors import ConfigError, DatabaseError
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
#: cronwright's own migrations, in name order (they precede the project's).
ENGINE = [m.key for m in engine_migrations()]


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(sql)


async def fetch(dsn: str, sql: str) -> list[dict[str, object]]:
    async with Database.open(dsn, max_size=1) as db:
        return await db.fetch(sql)


FIRST = "CREATE SCHEMA app;\nCREATE TABLE app.a (id int PRIMARY KEY);\n"
SECOND = "CREATE TABLE app.b (a_id int REFERENCES app.a (id));\n"


def test_migrate_applies_cronwright_then_the_project_in_name_order(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0002_b.sql", SECOND)
    write(tmp_path, "0001_a.sql", FIRST)
    applied = run(migrate_url(pg_empty_dsn, tmp_path))
    assert applied == [*ENGINE, "project:0001_a.sql", "project:0002_b.sql"]
    rows = run(
        fetch(
            pg_empty_dsn,
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
            pg_empty_dsn,
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
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    run(migrate_url(pg_empty_dsn, tmp_path))
    assert run(migrate_url(pg_empty_dsn, tmp_path)) == []
    write(tmp_path, "0002_b.sql", SECOND)
    assert run(migrate_url(pg_empty_dsn, tmp_path)) == ["project:0002_b.sql"]


@pytest.mark.parametrize("key", sorted(REWORDED))
def test_a_database_migrated_before_a_comment_was_corrected_migrates_again_without_error(
    pg_empty_dsn: str, tmp_path: Path, key: str
) -> None:
    source, name = key.split(":")
    run(migrate_url(pg_empty_dsn, tmp_path))

    async def recorded(checksum: str) -> None:
        async with Database.open(pg_empty_dsn, max_size=1) as db, db.transaction() as tx:
            await tx.execute(
                "UPDATE cronwright.schema_migrations SET checksum = $3"
                " WHERE source = $1 AND name = $2",
                source,
                name,
                checksum,
            )

    (earlier,) = REWORDED[key]
    run(recorded(earlier))  # as a database migrated before the correction has it
    assert run(migrate_url(pg_empty_dsn, tmp_path)) == []
    run(recorded("0" * 64))  # any other text is still a change
    with pytest.raises(ConfigError, match="changed after it was applied"):
        run(migrate_url(pg_empty_dsn, tmp_path))


def test_changed_applied_migration_is_an_error(pg_empty_dsn: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    run(migrate_url(pg_empty_dsn, tmp_path))
    edited = FIRST + "CREATE TABLE app.c (id int);\n"
    write(tmp_path, "0001_a.sql", edited)
    with pytest.raises(ConfigError) as caught:
        run(migrate_url(pg_empty_dsn, tmp_path))
    old, new = (hashlib.sha256(s.encode()).hexdigest()[:12] for s in (FIRST, edited))
    assert str(caught.value) == (
        f"{tmp_path}/0001_a.sql: changed after it was applied (applied sha256 {old},"
        f" file sha256 {new}); add a new migration instead of editing an applied one"
    )
    tables = run(fetch(pg_empty_dsn, "SELECT to_regclass('app.c') IS NULL AS absent"))
    assert tables == [{"absent": True}]


def test_failed_migration_rolls_back_whole_and_is_not_recorded(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    write(
        tmp_path,
        "0002_b.sql",
        "CREATE TABLE app.half (id int);\nCREATE TABLE app.b (x nosuchtype);\n",
    )
    with pytest.raises(DatabaseError) as caught:
        run(migrate_url(pg_empty_dsn, tmp_path))
    assert (caught.value.error_class, caught.value.transient) == ("undefined_object", False)
    assert str(caught.value) == (
        f'{tmp_path}/0002_b.sql:2:23: undefined_object (42704): type "nosuchtype" does not'
        f" exist; this file was rolled back ({len(ENGINE) + 1} applied before it in this run,"
        f" the last {tmp_path}/0001_a.sql); fix it and run cronwright db migrate again"
    )
    state = run(
        fetch(
            pg_empty_dsn,
            "SELECT to_regclass('app.half') IS NULL AS half_absent,"
            " (SELECT count(*) FROM cronwright.schema_migrations WHERE source = 'project') AS n",
        )
    )
    assert state == [{"half_absent": True, "n": 1}]
    write(tmp_path, "0002_b.sql", SECOND)
    assert run(migrate_url(pg_empty_dsn, tmp_path)) == ["project:0002_b.sql"]


def test_concurrent_migrators_apply_each_migration_once(pg_empty_dsn: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", FIRST)
    write(tmp_path, "0002_b.sql", SECOND)

    async def both() -> list[list[str]]:
        return list(
            await asyncio.gather(
                migrate_url(pg_empty_dsn, tmp_path), migrate_url(pg_empty_dsn, tmp_path)
            )
        )

    first, second = run(both())
    assert sorted(first + second) == sorted([*ENGINE, "project:0001_a.sql", "project:0002_b.sql"])


def test_db_migrate_applies_the_repository_migrations(pg_empty_dsn: str) -> None:
    applied = run(wiring.migrate(pg_empty_dsn, ROOT / "sql" / "migrations"))
    expected = [*ENGINE] + [
        f"project:{p.name}" for p in sorted((ROOT / "sql" / "migrations").glob("*.sql"))
    ]
    assert applied == expected
    assert run(wiring.migrate(pg_empty_dsn, ROOT / "sql" / "migrations")) == []


def db_migrate(
    project: Path, dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``cronwright db migrate`` run from the project's folder, as a user would."""
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", dsn)
    code = main(["db", "migrate"])
    out, err = capsys.readouterr()
    return code, out, err


APPLIED_ENGINE = "".join(f"applied cronwright/{m.name}\n" for m in engine_migrations())
T1 = "CREATE SCHEMA app;\nCREATE TABLE app.t1 (id int PRIMARY KEY);\n"
T2 = "CREATE TABLE app.t2 (id int PRIMARY KEY, t1 int REFERENCES app.t1);\n"
T3 = "CREATE TABLE app.t3 (t2 int REFERENCES app.t2);\n"


def test_db_migrate_skips_down_files_and_applies_the_rest_in_the_order_of_their_numbers(
    pg_empty_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "sql" / "migrations"
    write(folder, "000001_t1.up.sql", T1)
    write(folder, "000001_t1.down.sql", "DROP TABLE app.t1;\n")  # sorts first by name
    write(folder, "000010_t3.sql", T3)  # before 2_t2 by name, after it by number
    write(folder, "2_t2.up.sql", T2)
    write(folder, "README.md", "not a migration\n")
    skipped = "skipped sql/migrations/000001_t1.down.sql: down migrations are not run\n"
    assert db_migrate(tmp_path, pg_empty_dsn, capsys, monkeypatch) == (
        0,
        skipped
        + APPLIED_ENGINE
        + "applied sql/migrations/000001_t1.up.sql\n"
        + "applied sql/migrations/2_t2.up.sql\n"
        + "applied sql/migrations/000010_t3.sql\n",
        "",
    )
    tables = run(fetch(pg_empty_dsn, "SELECT to_regclass('app.t1') IS NOT NULL AS t1"))
    assert tables == [{"t1": True}]
    assert db_migrate(tmp_path, pg_empty_dsn, capsys, monkeypatch) == (
        0,
        skipped + "database is up to date\n",
        "",
    )


def test_a_failing_migration_is_named_with_its_line_and_what_was_applied_before_it(
    pg_empty_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "sql" / "migrations"
    write(folder, "0001_t1.sql", T1)
    write(folder, "0002_t2.sql", "CREATE TABLE app.half (id int);\nCREAT TABLE app.t2 (id int);\n")
    write(folder, "0003_t3.sql", T3)
    assert db_migrate(tmp_path, pg_empty_dsn, capsys, monkeypatch) == (
        1,
        APPLIED_ENGINE + "applied sql/migrations/0001_t1.sql\n",
        "error: sql/migrations/0002_t2.sql:2:1: syntax_error (42601): syntax error at or near"
        f' "CREAT"; this file was rolled back ({len(ENGINE) + 1} applied before it in this run,'
        " the last sql/migrations/0001_t1.sql); fix it and run cronwright db migrate again\n",
    )
    state = run(
        fetch(
            pg_empty_dsn,
            "SELECT to_regclass('app.half') IS NULL AS half_absent,"
            " to_regclass('app.t3') IS NULL AS t3_absent",
        )
    )
    assert state == [{"half_absent": True, "t3_absent": True}]
    assert db_migrate(tmp_path, pg_empty_dsn, capsys, monkeypatch) == (
        1,
        "",
        "error: sql/migrations/0002_t2.sql:2:1: syntax_error (42601): syntax error at or near"
        ' "CREAT"; this file was rolled back (nothing was applied before it in this run); fix'
        " it and run cronwright db migrate again\n",
    )
    write(folder, "0002_t2.sql", T2)
    assert db_migrate(tmp_path, pg_empty_dsn, capsys, monkeypatch) == (
        0,
        "applied sql/migrations/0002_t2.sql\napplied sql/migrations/0003_t3.sql\n",
        "",
    )


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        (
            "seed.sql",
            b"INSERT INTO app.t1 VALUES (1);\n",
            "error: sql/migrations/seed.sql: a migration's name starts with its number, which"
            " sets its order; rename it 0002_seed.sql\n",
        ),
        (
            "0002_latin1.sql",
            "-- caf\u00e9\n".encode("latin-1"),
            "error: sql/migrations/0002_latin1.sql: not UTF-8 text (byte 6); save it as UTF-8\n",
        ),
    ],
)
def test_a_migration_folder_with_a_bad_file_is_refused_before_anything_is_applied(
    pg_empty_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: bytes,
    error: str,
) -> None:
    folder = tmp_path / "sql" / "migrations"
    write(folder, "0001_t1.sql", T1)
    (folder / name).write_bytes(content)
    assert db_migrate(tmp_path, pg_empty_dsn, capsys, monkeypatch) == (2, "", error)
    schema = run(fetch(pg_empty_dsn, "SELECT to_regnamespace('cronwright') IS NULL AS absent"))
    assert schema == [{"absent": True}]
