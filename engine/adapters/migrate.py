"""Versioned schema migrations: cronwright's own, then the project's, in name order.

Each file runs in its own transaction and is recorded with its SHA-256 in
``cronwright.schema_migrations``; re-running is a no-op and an applied file that has
changed since is an error. A transaction-scoped advisory lock serialises concurrent
migrators and works through Neon's pooler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.adapters.pg import Database
from engine.core.errors import ConfigError

# Created before any migration, so the record of 0001 has somewhere to go.
BOOTSTRAP_SQL = """
CREATE SCHEMA IF NOT EXISTS cronwright;
CREATE TABLE IF NOT EXISTS cronwright.schema_migrations (
    source      text        NOT NULL,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, name)
);
"""

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('cronwright:migrate', 0))"
MIGRATION_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Migration:
    source: str  # "engine" or "project": both may have a 0001
    name: str
    sql: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def engine_migrations() -> list[Migration]:
    folder = resources.files("engine") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(source="engine", name=f.name, sql=f.read_text("utf-8")) for f in files]


def project_migrations(folder: Path) -> list[Migration]:
    """``folder/*.sql`` in name order; a missing folder means none."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.sql"), key=lambda p: p.name)
    return [Migration(source="project", name=p.name, sql=p.read_text("utf-8")) for p in files]


def discover(project_folder: Path | None) -> list[Migration]:
    """Every migration to apply, cronwright's first."""
    found = engine_migrations()
    if project_folder is not None:
        found += project_migrations(project_folder)
    return found


async def apply(db: Database, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded; return the keys applied now."""
    async with db.transaction() as tx:
        await tx.execute(_LOCK)
        await tx.script(BOOTSTRAP_SQL)
    applied = []
    for migration in migrations:
        async with db.transaction() as tx:
            await tx.execute(_LOCK)
            row = await tx.fetchrow(
                "SELECT checksum FROM cronwright.schema_migrations WHERE source = $1 AND name = $2",
                migration.source,
                migration.name,
            )
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise ConfigError(
                        f"migration {migration.key} changed after it was applied"
                        f" (applied sha256 {row['checksum'][:12]}, file"
                        f" sha256 {migration.checksum[:12]})",
                        hint="add a new migration instead of editing an applied one",
                    )
                continue
            await tx.script(migration.sql, timeout=MIGRATION_TIMEOUT_SECONDS)
            await tx.execute(
                "INSERT INTO cronwright.schema_migrations (source, name, checksum)"
                " VALUES ($1, $2, $3)",
                migration.source,
                migration.name,
                migration.checksum,
            )
        applied.append(migration.key)
    return applied


async def migrate_url(url: str, project_folder: Path | None) -> list[str]:
    """Open ``url``, apply every migration (cronwright's, then ``project_folder/*.sql``),
    close. For ``cronwright db migrate`` and test fixtures."""
    async with Database.open(url, max_size=1) as db:
        return await apply(db, discover(project_folder))
