"""Python actions at the command line: ``check-actions`` imports each one as its first
run would and checks it, and ``render`` of a python action's job says what it would
call, with what. ``validate`` and ``render`` import no project code."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.app.cli.args import OK, load
from engine.core.errors import JobFailed, ManifestError, ManifestErrors
from engine.core.model import Job, Manifest


def _python_actions(m: Manifest) -> list[tuple[Job, str]]:
    return [(j, j.action.python) for j in m.jobs if j.action and j.action.python]


def cmd_check_actions(args: argparse.Namespace) -> int:
    from engine.manifest.loader import locate
    from engine.runtime import pyload

    m = load(args)
    actions = _python_actions(m)
    problems = []
    for job, target in actions:
        try:
            pyload.load(Path(m.path).parent, target)
        except JobFailed as err:
            at = ("jobs", job.name, "action", "python")
            problems.append(
                ManifestError(
                    err.message,
                    hint=err.hint,
                    path=".".join(at),
                    location=locate(args.manifest, at),
                )
            )
    if problems:
        raise ManifestErrors(problems)
    n = len(actions)
    listed = f"{n} python action{'s' if n != 1 else ''}: " if n else "no python actions"
    print(f"{args.manifest}: ok ({listed}{', '.join(t for _, t in actions)})")
    return OK


def describe_call(m: Manifest, job: Job, target: str, slot: datetime) -> str:
    """What a run of ``job`` at ``slot`` calls, and the argument it passes (for
    ``render``; nothing is imported)."""
    from engine.manifest.actionchecks import module_files

    module, _, function = target.partition(":")
    root = Path(m.path).parent
    file = next((f for f in module_files(module) if (root / f).is_file()), module_files(module)[0])
    start, end = job.bounds(slot)
    window = f" window [{start.isoformat()}, {end.isoformat()})" if start and end else ""
    fields = [
        ("job", repr(job.name)),
        ("slot", slot.isoformat()),
        ("window_start", start.isoformat() if start else "None (the job has no window)"),
        ("window_end", end.isoformat() if end else "None"),
        ("params", repr(dict(job.params))),
        ("rerun", "False (True under `cronwright run --rerun`)"),
        ("connection", "an asyncpg connection inside the job's transaction"),
    ]
    lines = [
        f"# {job.type} slot {slot.isoformat()}{window}",
        f"# calls await {function}(run), from {file} ({target}), with run:",
        *(f"run.{name:<13} {value}" for name, value in fields),
    ]
    return "\n".join(lines)


def register(sub: Any) -> None:
    sub.add_parser(
        "check-actions",
        help="import every python action of jobs.yaml and check it is an async function of"
        " one argument (runs the project's module code; validate imports nothing)",
    ).set_defaults(func=cmd_check_actions)
