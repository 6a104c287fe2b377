"""The web console against a real Postgres, for the route tests and the browser tests: a
project and database with every slot status (devtools/consoledata.py), the console
served on a free loopback port, and an HTTP client that signs in as a browser does."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from devtools import consoledata
from engine.adapters.pg import Database
from engine.app.console.server import open_console
from engine.core.model import Manifest
from engine.manifest import load
from engine.runtime.scheduling import grace_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "console-test-token-0123456789abcdef"
ADDRESS = re.compile(r"web console on (http://127\.0\.0\.1:\d+/) \(([^)]*)\)")
CELL = re.compile(r'data-job="([^"]+)" data-slot="([^"]+)" data-status="([^"]+)"')


def fresh_minute(latest_second: int = 40) -> datetime:
    """The current minute, after waiting for the next one when little of it is left: a
    test that compares two answers keeps them inside one minute."""
    now = datetime.now(UTC)
    if now.second > latest_second:
        time.sleep(60.5 - now.second - now.microsecond / 1e6)
        now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0)


def project(root: Path) -> Manifest:
    return load(str(consoledata.write_project(root)))


@dataclass
class Client:
    http: aiohttp.ClientSession
    url: str
    db: Database

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        async with self.http.get(path, allow_redirects=False, **kw) as r:
            return r.status, await r.text()

    async def post(self, path: str, data: Mapping[str, str], **kw: Any) -> tuple[int, str, str]:
        """(status, body, Location)."""
        async with self.http.post(path, data=dict(data), allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r.headers.get("Location", "")

    async def form_token(self, page: str, action: str) -> str:
        """The CSRF token of the form on ``page`` that posts to ``action``."""
        status, html = await self.get(page)
        assert status == 200, html
        found = re.search(
            rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
            r'<input type="hidden" name="csrf" value="([^"]*)"',
            html,
        )
        assert found is not None, f"no form posting to {action} on {page}"
        return found.group(1)

    async def sign_in(self, name: str = "alice", token: str = TOKEN) -> int:
        status, html = await self.get("/login")
        assert status == 200, html
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found is not None, html
        code, _, _ = await self.post(
            "/login", {"token": token, "name": name, "csrf": found.group(1)}
        )
        return code

    async def cells(self, query: str) -> list[tuple[str, str, str]]:
        status, html = await self.get(f"/grid?{query}")
        assert status == 200, html
        return CELL.findall(html)


async def rows(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with db.transaction() as tx:
        return await tx.fetch(sql, *args)


@asynccontextmanager
async def console(
    dsn: str,
    manifest: Manifest,
    *,
    token: str | None = None,
    transport: str = "postgres",
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[Client]:
    """The console on a free port of 127.0.0.1, and a client with its own cookie jar."""
    env = {"DATABASE_URL": dsn, **(environ or {})}
    if token is not None:
        env["CRONWRIGHT_UI_TOKEN"] = token
    async with (
        Database.open(dsn, max_size=4) as db,
        open_console(
            manifest,
            db,
            port=0,
            host="127.0.0.1",
            transport=transport,
            grace=grace_for(transport),
            environ=env,
        ) as url,
        aiohttp.ClientSession(
            base_url=url,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies from an IP address
            timeout=aiohttp.ClientTimeout(total=30),
        ) as http,
    ):
        yield Client(http, url, db)


@contextmanager
def started(
    args: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """The process, its console's address and what it said of its mode; SIGTERM at the
    end (its exit code is checked)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
                line = proc.stderr.readline()
                if not line:
                    break
                seen.append(line)
                if found := ADDRESS.search(line):
                    break
            else:
                found = None
        assert found is not None, "".join(seen)
        yield proc, found.group(1), found.group(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(seen) + err
