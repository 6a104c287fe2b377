"""TLS defaults against a real Postgres with a self-signed certificate, reached on a
non-loopback address: without ``sslmode`` the connection verifies the certificate (and
so refuses this one); an explicit ``sslmode`` is honoured as written."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pgserver import OS_USER, PgServer, PostgresUnavailable, start, stop
from engine.adapters.pg import Database
from engine.core.errors import DatabaseError
from tests.fixtures.aio import run
from tests.fixtures.need import missing

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def collect_refused_sockets() -> Iterator[None]:
    """asyncpg leaves the socket of a refused TLS handshake to the garbage collector; its
    ResourceWarning would surface in whichever test the collection happens to fall in.
    Collect it here, after each test, where it is known and harmless."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def outward_address() -> str | None:
    """An IPv4 address of this host that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[PgServer, str]]:
    address = outward_address()
    if address is None or shutil.which("openssl") is None:
        missing("no non-loopback address or no openssl for the TLS test")
    # Outside pytest's tmp dirs, which the postgres OS user cannot enter.
    certs = Path(tempfile.mkdtemp(prefix="cronwright-tls-"))
    cert, key = certs / "server.crt", certs / "server.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={address}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    if os.geteuid() == 0:
        for path in (certs, cert, key):
            shutil.chown(path, OS_USER, OS_USER)
    key.chmod(0o600)
    settings = {
        "listen_addresses": f"'127.0.0.1,{address}'",
        "ssl": "on",
        "ssl_cert_file": f"'{cert}'",
        "ssl_key_file": f"'{key}'",
    }
    try:
        server = start(settings=settings)
    except PostgresUnavailable as exc:
        shutil.rmtree(certs, ignore_errors=True)
        missing(str(exc))
    try:
        yield server, address
    finally:
        stop(server)
        shutil.rmtree(certs, ignore_errors=True)


def connect_error(url: str) -> str:
    async def main() -> None:
        async with Database.open(url, connect_timeout=10):
            pass

    with pytest.raises(DatabaseError) as caught:
        run(main())
    return str(caught.value)


def test_a_remote_host_without_sslmode_refuses_an_unverified_certificate(
    tls_server: tuple[PgServer, str],
) -> None:
    server, address = tls_server
    error = connect_error(f"postgresql://{server.user}:Tls-s3cret@{address}:{server.port}/postgres")
    assert "CERTIFICATE_VERIFY_FAILED" in error
    assert "Tls-s3cret" not in error


def test_an_explicit_sslmode_require_encrypts_without_verifying(
    tls_server: tuple[PgServer, str],
) -> None:
    server, address = tls_server
    url = f"postgresql://{server.user}:Tls-s3cret@{address}:{server.port}/postgres?sslmode=require"
    # The handshake succeeds; the server's pg_hba.conf then turns the address away.
    error = connect_error(url)
    assert f'no pg_hba.conf entry for host "{address}"' in error
    assert "SSL encryption" in error


def test_an_explicit_sslmode_disable_connects_in_clear(tls_server: tuple[PgServer, str]) -> None:
    server, address = tls_server
    url = f"postgresql://{server.user}:Tls-s3cret@{address}:{server.port}/postgres?sslmode=disable"
    error = connect_error(url)
    assert f'no pg_hba.conf entry for host "{address}"' in error
    assert "no encryption" in error


def test_a_loopback_host_without_sslmode_keeps_connecting(
    tls_server: tuple[PgServer, str],
) -> None:
    server, _ = tls_server

    async def main() -> None:
        async with Database.open(server.dsn("postgres"), connect_timeout=10) as db:
            assert await db.fetch("SELECT 1 AS one") == [{"one": 1}]

    run(main())
