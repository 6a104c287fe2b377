"""The real, pinned wrangler CLI for the tests and benchmarks, kept offline and quiet.

``BINARY`` is ``node_modules/.bin/wrangler`` (``npm ci`` installs it from
package-lock.json). ``Wrangler.run`` runs one command with the offline environment, a
timeout and its output captured; ``Wrangler.dev`` is a context manager around
``wrangler dev`` that waits until it answers and, on exit, kills its whole process group
and waits until workerd has let go of the ports. The tests' session fixture is in
tests/fixtures/wrangler.py.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINARY = REPO / "node_modules" / ".bin" / "wrangler"
VERSION = "4.86.0"
RUN_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
# An update check that says "checked just now, nothing newer": wrangler never calls out.
UPDATE_CHECK = {"latest": "0.0.0", "lastUpdate": 99999999999999}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class WranglerError(Exception):
    """wrangler would not start, did not answer, or would not stop."""


def wrangler_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not BINARY.exists():
        return f"{BINARY.relative_to(REPO)} is missing (run npm ci)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` (our own closed connections may linger in TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def plain(text: str) -> str:
    """``text`` without ANSI colour codes."""
    return _ANSI.sub("", text)


def warnings_in(output: str) -> list[str]:
    """The lines of wrangler output that carry a warning."""
    return [line for line in plain(output).splitlines() if "[WARNING]" in line or "▲" in line]


def bindings_in(output: str) -> set[str]:
    """The ``env.NAME (resource)`` cells of wrangler's binding table."""
    rows = (line.strip() for line in plain(output).splitlines())
    return {re.split(r"\s{2,}", row)[0] for row in rows if row.startswith("env.")}


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr interleaved, colour codes removed

    def __str__(self) -> str:
        return f"$ wrangler {' '.join(self.args)}\n(exit {self.returncode})\n{self.output}"


@dataclass(frozen=True)
class DevServer:
    url: str
    log: Path

    def output(self) -> str:
        return plain(self.log.read_text(encoding="utf-8", errors="replace"))

    def get(self, path: str, *, timeout: float = HTTP_TIMEOUT) -> tuple[int, str]:
        """GET ``path``; returns (status, body) for any HTTP answer, errors included."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), exc.read().decode()

    def get_json(self, path: str) -> object:
        status, body = self.get(path)
        if status != 200:
            raise WranglerError(f"GET {path} answered {status}: {body}\n{self.output()}")
        return json.loads(body)


@dataclass(frozen=True)
class Wrangler:
    binary: Path
    home: Path  # holds XDG_CONFIG_HOME and TMPDIR

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "CLOUDFLARE_CF_FETCH_ENABLED": "false",
            "NO_UPDATE_NOTIFIER": "1",
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "TMPDIR": str(self.home / "tmp"),
        }

    def run(self, *args: str, cwd: Path, timeout: float = RUN_TIMEOUT) -> Result:
        try:
            proc = subprocess.run(
                [str(self.binary), *args],
                cwd=cwd,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.output.decode(errors="replace") if exc.output else ""
            raise WranglerError(
                f"wrangler {' '.join(args)} timed out after {timeout:g}s\n{plain(out)}"
            ) from exc
        return Result(args, proc.returncode, plain(proc.stdout.decode(errors="replace")))

    def deploy_dry_run(self, config: Path, env_name: str, outdir: Path) -> Result:
        """``wrangler deploy --dry-run``; ``env_name`` "" is the top level (naming it
        explicitly is what keeps wrangler from warning about the other environments)."""
        return self.run(
            "deploy",
            "--dry-run",
            "--outdir",
            str(outdir),
            "-c",
            str(config),
            "--env",
            env_name,
            cwd=config.parent,
        )

    @contextlib.contextmanager
    def dev(
        self,
        config: Path,
        *,
        env_name: str = "",
        variables: Mapping[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Iterator[DevServer]:
        """Run ``wrangler dev -c config`` on free ports until the block ends."""
        port, inspector = free_port(), free_port()
        state = config.parent / f".dev-state-{port}"
        log = config.parent / f"wrangler-dev-{port}.log"
        args: list[str] = [
            "dev",
            "-c",
            str(config),
            "--env",
            env_name,
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--inspector-port",
            str(inspector),
            "--persist-to",
            str(state),
            "--show-interactive-dev-session=false",
        ]
        for name, value in (variables or {}).items():
            args += ["--var", f"{name}:{value}"]
        with open(log, "wb") as sink:
            # Its own process group: wrangler's node, esbuild and workerd all stop together.
            proc = subprocess.Popen(
                [str(self.binary), *args],
                cwd=config.parent,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = DevServer(f"http://127.0.0.1:{port}", log)
        try:
            _wait_until_answering(server, proc, timeout)
            yield server
        finally:
            _stop(proc, (port, inspector))


def _wait_until_answering(server: DevServer, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise WranglerError(f"wrangler dev exited with {proc.returncode}\n{server.output()}")
        try:
            server.get("/", timeout=2.0)
            return
        except (OSError, http.client.HTTPException):  # not listening (or not speaking) yet
            pass
        if time.monotonic() > deadline:
            raise WranglerError(
                f"wrangler dev did not answer within {timeout:g}s\n{server.output()}"
            )
        time.sleep(0.2)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _stop(proc: subprocess.Popen[bytes], ports: Sequence[int]) -> None:
    """SIGTERM the group, SIGKILL whatever is left, then wait for the ports to be free."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
    # workerd may outlive node: never leave it serving the port.
    _signal_group(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT
    while not all(port_is_free(p) for p in ports):
        if time.monotonic() > deadline:
            raise WranglerError(f"ports {list(ports)} still bound {STOP_TIMEOUT:g}s after stop")
        time.sleep(0.1)


def make_home(base: Path) -> Path:
    """A config and temp dir for wrangler with the update check seeded."""
    (base / "config").mkdir(parents=True, exist_ok=True)
    check = base / "tmp" / "update-check"
    check.mkdir(parents=True, exist_ok=True)
    (check / "wrangler-latest.json").write_text(json.dumps(UPDATE_CHECK), encoding="utf-8")
    return base
