"""``engine/queries/schema.sql``: the schema of cronwright's own tables and functions that
a fresh ``cronwright db migrate`` creates, from ``pg_dump --schema-only`` of a throwaway
server, without its session settings and comments so that it reads as a schema.

    python -m devtools.schema_snapshot          # write it (make schema)
    python -m devtools.schema_snapshot --check  # exit 1 when it differs

tests/integration/test_schema_snapshot.py compares it with a fresh migrate.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from devtools.pgserver import ROOT, admin, find_bin, start, stop

SNAPSHOT = ROOT / "engine" / "queries" / "schema.sql"
HEADER = """\
-- The schema of cronwright's own tables and functions after every migration in
-- engine/migrations/ (written by `make schema` from pg_dump; a test keeps it true).
-- Read it to see what cronwright keeps; change it with a new migration, never here.
"""


def normalize(dump: str) -> str:
    """pg_dump's text without its settings, comments and owner lines."""
    keep = []
    for line in dump.splitlines():
        if line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\")):
            continue
        keep.append(line.rstrip())
    text = "\n".join(keep)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return HEADER + "\n" + text.strip() + "\n"


def dump(dsn: str) -> str:
    pg_dump = find_bin("pg_dump")
    if pg_dump is None:
        raise SystemExit("pg_dump not found")
    done = subprocess.run(
        [pg_dump, "--schema-only", "--schema=cronwright", "--no-owner", "--no-privileges", dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    return normalize(done.stdout)


async def migrated(server: object) -> str:
    from engine.adapters.migrate import migrate_url

    await admin(server, 'CREATE DATABASE "snapshot"')  # type: ignore[arg-type]
    dsn = server.dsn("snapshot")  # type: ignore[attr-defined]
    await migrate_url(dsn, None)
    return str(dsn)


def current() -> str:
    """What a fresh migrate creates, normalized."""
    server = start()
    try:
        return dump(asyncio.run(migrated(server)))
    finally:
        stop(server)


def main(argv: list[str]) -> int:
    text = current()
    if argv == ["--check"]:
        same = SNAPSHOT.read_text("utf-8") == text
        print(
            "engine/queries/schema.sql matches a fresh migrate"
            if same
            else "schema.sql is stale: run make schema"
        )
        return 0 if same else 1
    SNAPSHOT.write_text(text, "utf-8")
    print(f"wrote {SNAPSHOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
