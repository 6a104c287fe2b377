"""The metrics endpoint on a real socket: closed by default (127.0.0.1, read back from
/proc/net/tcp), Prometheus text that promtool accepts, and 4xx without a traceback for
requests an attacker would send (a 200 KB request line, garbage bytes, a header flood)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from devtools.manifests import probe_manifest
from engine.app.observe import Metrics
from engine.app.web import bound_port, http_endpoint
from engine.core.errors import ConfigError
from engine.core.model import Job, Period, Window
from engine.runtime.metrics import MetricRecord
from tests.fixtures.aio import run
from tests.fixtures.need import missing
from tests.integration.service_support import APPEND, write_project

ROOT = Path(__file__).resolve().parents[2]
JOB = Job(
    name="probe",
    type="test.probe",
    cron="0 * * * *",
    sql="sql/probe.sql",
    window=Window(period=Period.HOUR, offset=-1),
)


def metrics() -> Metrics:
    m = Metrics(probe_manifest(JOB))
    slot = datetime(2026, 10, 31, 10, tzinfo=UTC).isoformat()
    for status in ("succeeded", "retry"):
        m.emit(
            MetricRecord(
                queue="probe-jobs", message_id="m", status=status, event_type="test.probe",
                duration_ms=12.5, attempt=1, slot=slot, rows=1, error_class=None,
            )
        )  # fmt: skip
    return m


@asynccontextmanager
async def endpoint(m: Metrics, host: str = "127.0.0.1") -> AsyncIterator[int]:
    async with http_endpoint(m, 0, host) as runner:
        yield bound_port(runner)


async def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` raw and read the whole answer (the server closes after one)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    writer.write(request)
    chunks = []
    # The server may answer and close before reading all of a hostile request.
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            chunks.append(chunk)
    writer.close()
    return b"".join(chunks)


def status_line(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


def serving(m: Metrics, body: Callable[[int], Awaitable[object]]) -> object:
    async def main() -> object:
        async with endpoint(m) as port:
            return await body(port)

    return run(main())


def test_metrics_are_prometheus_text_exactly_as_the_registry_writes_them() -> None:
    m = metrics()
    answer = serving(m, lambda port: exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert isinstance(answer, bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = head.decode("latin-1").split("\r\n")
    assert headers[0] == "HTTP/1.1 200 OK"
    assert f"Content-Type: {CONTENT_TYPE_LATEST}" in headers
    assert body == m.exposition()
    assert b'cronwright_runs_total{job="probe",status="succeeded"} 1.0' in body


def test_promtool_accepts_what_the_endpoint_serves(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool is not installed (Debian: apt-get install prometheus)")
    answer = serving(metrics(), lambda p: exchange(p, b"GET /metrics HTTP/1.0\r\n\r\n"))
    assert isinstance(answer, bytes)
    body = answer.partition(b"\r\n\r\n")[2]
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_healthz_answers_ok_and_any_other_path_is_a_404() -> None:
    async def both(port: int) -> tuple[bytes, bytes]:
        return (
            await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            await exchange(port, b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"),
        )

    answers = serving(metrics(), both)
    assert isinstance(answers, tuple)
    health, other = answers
    assert status_line(health) == "HTTP/1.1 200 OK"
    assert health.endswith(b"\r\n\r\nok\n")
    assert status_line(other) == "HTTP/1.1 404 Not Found"


HOSTILE = {
    "a 200 KB request line": b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage bytes": bytes(range(256)) * 8 + b"\r\n\r\n",
    "a header flood": b"GET /metrics HTTP/1.1\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(20_000))
    + b"\r\n",
    "a 100 KB header": b"GET /metrics HTTP/1.1\r\nX-Big: " + b"y" * 100_000 + b"\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
}


@pytest.mark.parametrize("request_", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_request_gets_a_4xx_and_leaves_no_traceback_in_the_log(
    request_: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def hostile_then_healthy(port: int) -> tuple[bytes, bytes]:
        bad = await exchange(port, request_)
        return bad, await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

    answers = serving(metrics(), hostile_then_healthy)
    assert isinstance(answers, tuple)
    bad, good = answers
    assert status_line(bad).split(" ")[1].startswith("4"), status_line(bad)
    assert status_line(good) == "HTTP/1.1 200 OK"  # the endpoint is still up
    assert not [
        r for r in caplog.records if r.exc_info or r.exc_text or r.levelno >= logging.WARNING
    ]
    assert "Traceback" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.server"]
    assert len(lines) == 1 and lines[0].startswith("bad request from 127.0.0.1: 400"), lines


def listening(port: int) -> set[str]:
    """The local addresses listening on ``port``, as the kernel lists them
    (/proc/net/tcp and tcp6: what ``ss -ltn`` reads)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_by_default_the_endpoint_listens_on_loopback_only() -> None:
    async def main() -> set[str]:
        async with http_endpoint(metrics(), 0) as runner:
            return listening(bound_port(runner))

    assert run(main()) == {"127.0.0.1"}


def test_a_host_opens_it_where_the_operator_says() -> None:
    async def main() -> set[str]:
        async with http_endpoint(metrics(), 0, "0.0.0.0") as runner:
            return listening(bound_port(runner))

    assert run(main()) == {"0.0.0.0"}


def test_a_taken_port_stops_with_a_one_line_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main() -> None:
            async with http_endpoint(metrics(), port):
                pass

        with pytest.raises(ConfigError) as caught:
            run(main())
    assert str(caught.value) == (
        f"cannot serve metrics on 127.0.0.1:{port}: error while attempting to bind on address"
        f" ('127.0.0.1', {port}): address already in use; choose another --metrics-port, or a"
        " --metrics-host of this machine"
    )


@pytest.mark.postgres
def test_serve_on_a_taken_port_says_so_in_one_line_and_nothing_else(
    pg_dsn: str, tmp_path: Path
) -> None:
    manifest = write_project(tmp_path, {"tick": {"template": APPEND}})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "engine", "-m", str(manifest), "serve", "--metrics-port",
             str(port)],
            env={**os.environ, "DATABASE_URL": pg_dsn}, cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    # No loop was begun, so none is left never awaited (Python's RuntimeWarning lines).
    assert (proc.returncode, proc.stderr.splitlines()) == (
        2,
        [
            f"error: cannot serve metrics on 127.0.0.1:{port}: error while attempting to bind"
            f" on address ('127.0.0.1', {port}): address already in use; choose another"
            " --metrics-port, or a --metrics-host of this machine"
        ],
    )


@pytest.mark.postgres
def test_a_consume_process_binds_its_metrics_port_to_loopback_unless_told(pg_dsn: str) -> None:
    from devtools.ports import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg_dsn}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "-m", str(ROOT / "jobs.yaml"), "consume",
         "--transport", "postgres", "--consumers", "1", "--metrics-port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = f"consumers on the postgres queue mauntic-analytics-jobs; metrics on 127.0.0.1:{port}"
    try:
        assert proc.stderr is not None
        for _ in range(50):  # the service logs to stderr too; the line that says it is up
            line = proc.stderr.readline()
            if not line or line.startswith(started):
                break
        bound = listening(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert line == f"{started}/metrics\n", err
    assert bound == {"127.0.0.1"}
    assert proc.returncode == 0, err
