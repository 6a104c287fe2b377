"""A real, throwaway PostgreSQL for the tests, the demo and the benchmarks.

``start`` runs initdb + postgres as the ``postgres`` OS user with fsync off, on
127.0.0.1 and a free port, with password (scram-sha-256) auth over TCP only; ``stop``
stops it and removes its directory. tests/fixtures/postgres.py wraps these in pytest
fixtures.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from devtools.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DB = "cronwright_template"
USER = "cronwright"
OS_USER = "postgres"
TIMEOUT = 60.0


class PostgresUnavailable(Exception):
    """The PostgreSQL binaries are missing or the server would not start."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    datadir: Path
    pg_ctl: str

    def dsn(self, dbname: str) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def __repr__(self) -> str:  # never show the password
        return f"PgServer({self.host}:{self.port}, datadir={str(self.datadir)!r})"


def find_bin(name: str) -> str | None:
    """``name`` on PATH, else the newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _as_postgres() -> list[str]:
    """postgres refuses to run as root: drop to the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "--"]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        raise PostgresUnavailable(f"{what} failed ({proc.returncode}): {proc.stderr.strip()}")


def start(*, settings: dict[str, str] | None = None) -> PgServer:
    """initdb and start a server in a fresh temporary directory; ``settings`` are
    extra ``postgresql.conf`` lines (the benchmark raises memory)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise PostgresUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found")
    base = Path(tempfile.mkdtemp(prefix="cronwright-pg-"))
    datadir = base / "data"
    password = secrets.token_urlsafe(18)
    try:
        if os.geteuid() == 0:
            shutil.chown(base, OS_USER, OS_USER)
        pwfile = base / "pw"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, OS_USER, OS_USER)
        _run(
            [
                *_as_postgres(),
                initdb,
                "-D",
                str(datadir),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=reject",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
        pwfile.unlink()
        port = free_port()
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{base}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "password_encryption": "'scram-sha-256'",
            "max_connections": "50",
            "timezone": "'UTC'",
            **(settings or {}),
        }
        with open(datadir / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        (datadir / "pg_hba.conf").write_text("host all all 127.0.0.1/32 scram-sha-256\n")
        _run(
            [
                *_as_postgres(),
                pg_ctl,
                "-D",
                str(datadir),
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                str(int(TIMEOUT)),
                "start",
            ],
            "pg_ctl start",
        )
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(base, ignore_errors=True)
        if isinstance(exc, PostgresUnavailable):
            raise
        raise PostgresUnavailable(f"could not start PostgreSQL: {exc}") from exc
    return PgServer(
        host="127.0.0.1", port=port, user=USER, password=password, datadir=datadir, pg_ctl=pg_ctl
    )


def stop(server: PgServer) -> None:
    """Stop the server and remove its directory."""
    try:
        _run(
            [*_as_postgres(), server.pg_ctl, "-D", str(server.datadir), "-m", "immediate", "stop"],
            "pg_ctl stop",
        )
    finally:
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


async def apply_migrations(dsn: str) -> None:
    """Apply every migration exactly as `cronwright db migrate` does: cronwright's own,
    then sql/migrations/, in name order, recorded in cronwright.schema_migrations."""
    from engine.adapters.migrate import migrate_url

    await migrate_url(dsn, ROOT / "sql" / "migrations")


async def admin(server: PgServer, *statements: str) -> None:
    """Run statements (CREATE/DROP DATABASE) outside a transaction on ``postgres``."""
    import asyncpg  # only the tooling that needs a server pays for the import

    conn = await asyncpg.connect(server.dsn("postgres"), timeout=TIMEOUT)
    try:
        for statement in statements:
            await conn.execute(statement, timeout=TIMEOUT)
    finally:
        await conn.close(timeout=TIMEOUT)


@asynccontextmanager
async def migrated_database(
    *, settings: dict[str, str] | None = None, name: str = "bench"
) -> AsyncIterator[str]:
    """A throwaway server with one database, every migration applied: its DSN (the
    benchmarks). The server is stopped and removed when the block ends."""
    server = start(settings=settings)
    try:
        await admin(server, f'CREATE DATABASE "{name}"')
        dsn = server.dsn(name)
        await apply_migrations(dsn)
        yield dsn
    finally:
        stop(server)
