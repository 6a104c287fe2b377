"""Output into a pipe whose reader has gone (`cronwright schedule | head`) ends quietly:
exit 0 and no BrokenPipeError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout a real pipe whose read end is closed before it writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "engine", *argv],
            cwd=REPO,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "argv",
    [
        ["schedule"],
        ["validate"],
        ["check"],
        ["cron", "*/5 * * * *", "--next", "3"],
        ["render", "aggregate-hourly", "--at", "2026-10-31T10:00:00Z"],
        ["--help"],
    ],
)
def test_output_into_a_pipe_closed_before_the_first_write_ends_quietly_with_0(
    argv: list[str],
) -> None:
    proc = into_closed_pipe(*argv)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_schedule_into_head_ends_quietly_when_head_has_its_lines() -> None:
    # Far more than a pipe buffer holds, so the writer meets the closed pipe mid-output.
    proc = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"{sys.executable} -m engine schedule --next 3000 | head -2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "project    mauntic-analytics\ntransport  cloudflare\n",
        "",
    )
