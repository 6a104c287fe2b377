"""Real S3 protocol servers on 127.0.0.1 for the tests and the benchmarks.

- miniflare's local R2 S3 endpoint (Cloudflare's own R2 simulator: 1000-key caps,
  credentials, 412 on conditional writes), run by ``miniflare_r2.mjs``;
- moto's server mode (faster, looser: no credential checks, no 1000-key cap).

tests/fixtures/s3.py wraps them in pytest fixtures (and adds a fault-injecting proxy).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devtools.ports import free_port
from engine.adapters.r2config import R2Settings

REPO = Path(__file__).resolve().parents[1]
MINIFLARE_SCRIPT = Path(__file__).with_name("miniflare_r2.mjs")
BUCKET = "mauntic-warmup-counters-test"


class ServerUnavailable(Exception):
    """A test server could not be started (missing tool, or it did not come up)."""


@dataclass
class S3Server:
    kind: str
    endpoint_url: str
    bucket: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    tmpdir: str | None = field(default=None, repr=False)
    seed_url: str | None = None  # miniflare: the Worker's bulk-write endpoint
    _client: Any = field(default=None, repr=False, compare=False)

    def settings(self, **overrides: Any) -> R2Settings:
        base = R2Settings(
            endpoint_url=self.endpoint_url,
            bucket=self.bucket,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            connect_timeout=5.0,
            read_timeout=30.0,
        )
        return replace(base, **overrides)

    def client(self) -> Any:
        """A boto3 client for setup and checks, made once (each costs ~0.3 s of CPU)."""
        if self._client is None:
            from engine.adapters.s3client import make_client

            self._client = make_client(self.settings(max_concurrency=16))
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def miniflare_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (REPO / "node_modules" / "miniflare" / "package.json").exists():
        return "miniflare is not installed (run npm ci)"
    return None


def moto_missing() -> str | None:
    if not _moto_binary().exists():
        return "moto_server is not installed (pip install 'moto[s3,server]')"
    return None


def _moto_binary() -> Path:
    return Path(sys.executable).with_name("moto_server")


def start_miniflare(bucket: str = BUCKET, *, timeout: float = 30.0) -> S3Server:
    """Start miniflare's R2 S3 endpoint on a free port, with fresh random credentials."""
    reason = miniflare_missing()
    if reason:
        raise ServerUnavailable(reason)
    key_id, secret = secrets.token_hex(10), secrets.token_hex(20)
    # Miniflare keeps unpersisted R2 data under TMPDIR; on tmpfs it writes ~10x faster.
    shm = Path("/dev/shm")
    tmp = tempfile.mkdtemp(prefix="cronwright-r2-", dir=shm if shm.is_dir() else None)
    env = {
        **os.environ,
        "TMPDIR": tmp,
        "WRANGLER_SEND_METRICS": "false",
        "R2_TEST_BUCKET": bucket,
        "R2_TEST_ACCESS_KEY_ID": key_id,
        "R2_TEST_SECRET_ACCESS_KEY": secret,
        "R2_TEST_PORT": "0",
    }
    log_path = Path(tmp) / "miniflare.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["node", str(MINIFLARE_SCRIPT)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    server = S3Server("miniflare", "", bucket, key_id, secret, proc, tmpdir=tmp)
    try:
        info = json.loads(line)
    except ValueError:
        tail = log_path.read_text(errors="replace")[-800:]
        server.stop()
        raise ServerUnavailable(f"miniflare did not start within {timeout:g}s: {tail}") from None
    server.endpoint_url = info["url"]
    server.seed_url = urllib.parse.urljoin(info["worker"], "/seed")
    return server


def start_moto(bucket: str = BUCKET, *, timeout: float = 30.0) -> S3Server:
    """Start ``moto_server`` on a free port and create the bucket."""
    reason = moto_missing()
    if reason:
        raise ServerUnavailable(reason)
    port = free_port()
    proc = subprocess.Popen(
        [str(_moto_binary()), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = S3Server("moto", f"http://127.0.0.1:{port}", bucket, "moto-key", "moto-secret", proc)
    deadline = time.monotonic() + timeout
    while not _accepts(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            server.stop()
            raise ServerUnavailable(f"moto_server did not start within {timeout:g}s")
        time.sleep(0.05)
    # moto wants a LocationConstraint when the region is "auto"
    server.client().create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "auto"}
    )
    return server


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def list_keys(server: S3Server, prefix: str = "") -> list[str]:
    keys: list[str] = []
    pages = (
        server.client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=server.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000})
    )
    for page in pages:
        keys.extend(obj["Key"] for obj in page.get("Contents", ()))
    return keys


def empty_bucket(server: S3Server) -> None:
    keys = list_keys(server)
    for i in range(0, len(keys), 1000):
        objects = [{"Key": k} for k in keys[i : i + 1000]]
        server.client().delete_objects(
            Bucket=server.bucket, Delete={"Objects": objects, "Quiet": True}
        )


def put_objects(server: S3Server, items: Iterable[tuple[str, bytes]], *, workers: int = 16) -> None:
    """Write many objects in parallel (seeding 20,000 counters one by one is slow)."""
    client = server.client()
    with ThreadPoolExecutor(workers) as pool:
        put = lambda kv: client.put_object(Bucket=server.bucket, Key=kv[0], Body=kv[1])  # noqa: E731
        for _ in pool.map(put, items):
            pass


def seed_objects(server: S3Server, keys: list[str], body: bytes) -> None:
    """Create many objects with one body: through the Worker's R2 binding on miniflare
    (an S3 PUT each is client-bound at ~400/s here), by parallel PUTs on moto."""
    if server.seed_url is None:
        put_objects(server, ((k, body) for k in keys))
        return
    for i in range(0, len(keys), 2000):
        chunk = keys[i : i + 2000]
        payload = json.dumps({"keys": chunk, "body": body.decode()}).encode()
        request = urllib.request.Request(server.seed_url, data=payload, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            assert json.load(response) == {"written": len(chunk)}
