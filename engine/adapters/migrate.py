"""Versioned schema migrations: cronwright's own, then the project's folder, each in the
order of the number its name starts with.

Each file runs in its own transaction and is recorded with its SHA-256 in
``cronwright.schema_migrations``; re-running is a no-op and an applied file that has
changed since is an error. Files ending in ``.down.sql`` are left alone and reported
(rolling back is a person's decision). A failure names its file (with the line and
column when the server gives a position) and what this run applied before it. A
transaction-scoped advisory lock serialises concurrent migrators and works through Neon's
pooler.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from engine.adapters.pg import Database
from engine.core.errors import ConfigError, DatabaseError, Location
from engine.core.queries import query

MIGRATION_TIMEOUT_SECONDS = 600.0
DOWN = ".down.sql"
_NUMBER = re.compile(r"\d+")

Report = Callable[[str], None]


#: cronwright's migrations whose comments were corrected after they were released, with
#: the checksums their earlier texts were recorded under: a database migrated before the
#: correction is not "changed after it was applied". Only comments: a test compares the
#: statements with the earlier texts'.
REWORDED: dict[str, frozenset[str]] = {
    "engine:0001_cronwright.sql": frozenset(
        {"4deec5a7a8a06e32791b7c1e6c84a18a4646ffa20b809a9554ae03fd1c424ecc"}
    ),
    "engine:0007_run_slot.sql": frozenset(
        {"07b6dfb21e5b4f675a925a0093ad2b4305e475f84294e40b67a19246b38c2923"}
    ),
}


@dataclass(frozen=True)
class Migration:
    source: str  # "engine" or "project": both may have a 0001
    name: str
    sql: str
    shown: str  # how messages name it: sql/migrations/0003_x.sql, cronwright/0001_...

    @property
    def key(self) -> str:
        return f"{self.source}:{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class Found:
    """The migrations to apply, in order, and the down files left alone (as shown)."""

    migrations: list[Migration]
    skipped: list[str] = field(default_factory=list)


def _number(name: str) -> int | None:
    found = _NUMBER.match(name)
    return int(found.group()) if found else None


def _ordered(names: Sequence[str], shown: Callable[[str], str]) -> list[str]:
    """``names`` by the number each starts with (then by name); a name without one is
    refused, before anything is applied."""
    numbered = {n: k for n in names if (k := _number(n)) is not None}
    for name in names:
        if name not in numbered:
            width = max((len(n) - len(n.lstrip("0123456789")) for n in numbered), default=4)
            raise ConfigError(
                "a migration's name starts with its number, which sets its order",
                location=Location(shown(name)),
                hint=f"rename it {max(numbered.values(), default=0) + 1:0{width}d}_{name}",
            )
    return sorted(names, key=lambda n: (numbered[n], n))


def engine_migrations() -> list[Migration]:
    folder = resources.files("engine") / "migrations"
    files = {f.name: f for f in folder.iterdir() if f.name.endswith(".sql")}
    return [
        Migration("engine", name, files[name].read_text("utf-8"), f"cronwright/{name}")
        for name in _ordered(list(files), lambda n: f"cronwright/{n}")
    ]


def project_migrations(folder: Path) -> Found:
    """``folder/*.sql`` but its down files, in order; a missing folder means none."""
    if not folder.is_dir():
        return Found([])
    names = [p.name for p in folder.glob("*.sql") if not p.name.startswith(".")]
    down = sorted(n for n in names if n.lower().endswith(DOWN))
    ups = _ordered([n for n in names if n not in down], lambda n: str(folder / n))
    return Found(
        [Migration("project", n, _read(folder / n), str(folder / n)) for n in ups],
        [str(folder / n) for n in down],
    )


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})",
            location=Location(str(path)),
            hint="save it as UTF-8",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror}", location=Location(str(path))) from exc


def discover(project_folder: Path | None) -> Found:
    """Every migration to apply, cronwright's first, and the project's down files."""
    project = project_migrations(project_folder) if project_folder is not None else Found([])
    return Found(engine_migrations() + project.migrations, project.skipped)


async def apply(
    db: Database, migrations: Sequence[Migration], report: Report | None = None
) -> list[str]:
    """Apply the migrations not yet recorded, reporting ``applied <file>`` for each; return
    the keys applied now."""
    async with db.transaction() as tx:
        await tx.execute(query("migrate.lock"))
        await tx.script(query("migrate.bootstrap"))
    applied: list[Migration] = []
    for migration in migrations:
        try:
            if not await _apply_one(db, migration):
                continue
        except DatabaseError as err:
            raise _failed(migration, err, applied) from err
        applied.append(migration)
        if report is not None:
            report(f"applied {migration.shown}")
    return [m.key for m in applied]


async def _apply_one(db: Database, migration: Migration) -> bool:
    """Apply ``migration`` in its own transaction; False when it was applied before."""
    async with db.transaction() as tx:
        await tx.execute(query("migrate.lock"))
        row = await tx.fetchrow(
            query("migrate.checksum"),
            migration.source,
            migration.name,
        )
        if row is not None:
            if row["checksum"] not in {migration.checksum, *REWORDED.get(migration.key, ())}:
                raise ConfigError(
                    f"changed after it was applied (applied sha256 {row['checksum'][:12]},"
                    f" file sha256 {migration.checksum[:12]})",
                    location=Location(migration.shown),
                    hint="add a new migration instead of editing an applied one",
                )
            return False
        await tx.script(migration.sql, timeout=MIGRATION_TIMEOUT_SECONDS)
        await tx.execute(
            query("migrate.record"),
            migration.source,
            migration.name,
            migration.checksum,
        )
    return True


def _failed(migration: Migration, err: DatabaseError, before: list[Migration]) -> DatabaseError:
    """``err`` located in the file that failed, with what this run applied before it."""
    if before:
        n = len(before)
        done = f"{n} applied before it in this run, the last {before[-1].shown}"
    else:
        done = "nothing was applied before it in this run"
    return DatabaseError(
        f"{err.message}; this file was rolled back ({done})",
        transient=err.transient,
        error_class=err.error_class,
        location=_where(migration, err),
        hint="fix it and run cronwright db migrate again",
    )


def _where(migration: Migration, err: DatabaseError) -> Location:
    """The file, and the line and column of the server's error position when it gave one
    (a script runs as one query string, so the position counts from the file's start)."""
    position = getattr(err.__cause__, "position", None)
    shown = migration.shown
    if not position or not str(position).isdigit():
        return Location(shown)
    upto = migration.sql[: int(position) - 1]
    return Location(shown, upto.count("\n") + 1, len(upto) - (upto.rfind("\n") + 1) + 1)


async def migrate_url(
    url: str, project_folder: Path | None, report: Report | None = None
) -> list[str]:
    """Open ``url``, apply every migration (cronwright's, then ``project_folder``'s), close.
    ``report`` gets a line for each file skipped or applied. For ``cronwright db migrate``
    and test fixtures."""
    found = discover(project_folder)
    if report is not None:
        for path in found.skipped:
            report(f"skipped {path}: down migrations are not run")
    async with Database.open(url, max_size=1) as db:
        return await apply(db, found.migrations, report)
