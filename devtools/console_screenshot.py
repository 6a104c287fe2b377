"""``docs/console-grid.png``: the web console's slot grid over a database that holds every
slot status (devtools/consoledata.py), as Debian's chromium renders it.

    python -m devtools.console_screenshot [OUT.png]

It starts a throwaway Postgres, seeds it, serves ``cronwright ui`` on a free port and
takes the screenshot with Playwright (``executable_path=/usr/bin/chromium``).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from devtools import consoledata
from devtools.pgserver import ROOT, admin, apply_migrations, start, stop

OUT = ROOT / "docs" / "console-grid.png"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_ADDRESS = re.compile(r"web console on (http://\S+/) ")


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 460},
        )
        page = context.new_page()
        page.goto(f"{url}?range=6h")
        page.screenshot(path=str(out))
        context.close()


def main(out: Path) -> None:
    server = start()
    try:
        asyncio.run(admin(server, 'CREATE DATABASE "console"'))
        dsn = server.dsn("console")
        asyncio.run(apply_migrations(dsn))
        with tempfile.TemporaryDirectory() as root:
            manifest = consoledata.write_project(Path(root))
            asyncio.run(consoledata.seed(dsn, datetime.now(UTC).replace(second=0, microsecond=0)))
            env = {**os.environ, "DATABASE_URL": dsn}
            env.pop("CRONWRIGHT_UI_TOKEN", None)
            args = ["-m", str(manifest), "ui", "--port", "0", "--transport", "cloudflare"]
            proc = subprocess.Popen(
                [sys.executable, "-m", "engine", *args],
                cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert proc.stderr is not None
                for line in proc.stderr:
                    if found := _ADDRESS.search(line):
                        shoot(found.group(1), out)
                        break
                else:
                    raise SystemExit("cronwright ui stopped before it served")
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        stop(server)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
