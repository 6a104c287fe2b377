"""A background loop of a service that dies for good (its scheduler: the other loops
catch, log and go on) stops the process with exit 1 and one line naming the loop and its
error, after the running work drained; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.app.cli import main
from engine.app.scheduler import Scheduler
from tests.integration.service_support import APPEND, write_project

pytestmark = pytest.mark.postgres


def test_a_scheduler_that_dies_stops_serve_with_exit_1_and_one_line(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_project(tmp_path, {"tick": {"template": APPEND}})

    async def dies(self: Scheduler) -> None:
        raise RuntimeError("the clock fell off the wall")

    monkeypatch.setattr(Scheduler, "run", dies)
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    argv = ["-m", str(manifest), "serve", "--consumers", "1", "--drain-seconds", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        "error: the scheduler stopped: RuntimeError: the clock fell off the wall"
    )
