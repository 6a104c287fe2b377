"""Manifest scale: `cronwright validate`, `generate`, `check` and `schedule` of generated
manifests of 100 and 1,000 jobs (devtools.manifests.scale_project: ten kinds of cron, a
third zoned, a template per job), each a real process with its start-up, against the same
command on the six-job example in the same run (goal at 1,000 jobs: <= 4x); plus the
six-job validate against a bare `python -c "import yaml, jsonschema, jinja2"` (goal:
<= 1.6x). Rows beyond the goal rows: 1,000 jobs folded onto the Free plan's 5 triggers,
and 1,000 jobs whose templates all have one text (Jinja compiles each distinct text once;
with a thousand distinct texts that is most of the cost), and 1,000 jobs with the cache
of compiled templates off (engine/sql/sqlcache.py): what the first run on a machine, or a
CI job without a cached ~/.cache, pays. Every other run has the cache on, in a folder of
the bench's own, filled by the first run of each project.

Each round runs every command on every project once, in turn; a figure is the median of
the rounds, and a ratio the median of the rounds' own ratios. The goals are judged on
wall-clock time; the CPU time of the processes is printed beside it, as it is less
disturbed by other work on a shared 2-core machine. The package is byte-compiled first
(as an installed one is): with PYTHONDONTWRITEBYTECODE set, each changed module would
otherwise be compiled again by every process.

    .venv/bin/python -m bench.manifest_scale [--rounds 7]

A measured column is a function of a Project returning what one run took (see COLUMNS);
add one to measure another command the same way.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.manifests import scale_project

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL_SCALE = 4.0
GOAL_START = 1.6
AT = "2026-06-01T00:00:00Z"  # schedule's start, fixed so every round prints the same


@dataclass(frozen=True)
class Project:
    label: str
    manifest: Path
    goal: bool = False  # a goal row: ratio against the example <= GOAL_SCALE
    cache: bool = True  # False: CRONWRIGHT_CACHE_DIR=off, every template compiled

    @property
    def root(self) -> Path:
        return self.manifest.parent


@dataclass(frozen=True)
class Took:
    wall: float  # seconds
    cpu: float  # seconds of user and system time


def timed(argv: Sequence[str], *, expect: int = 0, cache: bool = True) -> Took:
    """One process, start-up included; its exit code must be ``expect``."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if not cache:
        env["CRONWRIGHT_CACHE_DIR"] = "off"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Took(wall, cpu)


def cli(project: Project, *args: str) -> list[str]:
    return [str(BIN / "cronwright"), "-m", str(project.manifest), *args]


def validate(project: Project) -> Took:
    return timed(cli(project, "validate"), cache=project.cache)


def generate(project: Project) -> Took:
    out = Path(tempfile.mkdtemp(dir=project.root, prefix="generated-"))
    shutil.rmtree(out)  # a fresh directory each time: every run writes every file
    try:
        return timed(cli(project, "generate", "--out", str(out)), cache=project.cache)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def check(project: Project) -> Took:
    return timed(cli(project, "check"), cache=project.cache)  # against prepare()'s generated/


def schedule(project: Project) -> Took:
    return timed(cli(project, "schedule", "--at", AT), cache=project.cache)


Column = Callable[[Project], Took]
COLUMNS: tuple[Column, ...] = (validate, generate, check, schedule)


def bare_imports() -> Took:
    return timed([sys.executable, "-c", "import yaml, jsonschema, jinja2"])


def prepare(work: Path) -> list[Project]:
    example = work / "example"
    example.mkdir()
    shutil.copy(ROOT / "jobs.yaml", example / "jobs.yaml")
    shutil.copytree(ROOT / "sql", example / "sql")
    projects = [
        Project("6 (example)", example / "jobs.yaml"),
        Project("100", scale_project(work / "p100", 100)),
        Project("1,000", scale_project(work / "p1000", 1000), goal=True),
        Project("1,000, Free plan: 5 triggers", scale_project(work / "free", 1000, plan="free")),
        Project("1,000, one template text", scale_project(work / "one", 1000, one_template=True)),
        Project("1,000, template cache off", work / "p1000" / "jobs.yaml", True, cache=False),
    ]
    for p in projects:
        timed(cli(p, "generate"))  # generated/ for check
    return projects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    compileall.compile_dir(ROOT / "engine", quiet=1)
    with tempfile.TemporaryDirectory(prefix="cronwright-scale-") as tmp:
        os.environ["CRONWRIGHT_CACHE_DIR"] = str(Path(tmp) / "cache")
        projects = prepare(Path(tmp))
        base = projects[0]
        times: dict[tuple[str, str], list[Took]] = {}
        bare: list[Took] = []
        for _ in range(args.rounds):
            bare.append(bare_imports())
            for column in COLUMNS:
                for p in projects:
                    times.setdefault((column.__name__, p.label), []).append(column(p))
    report(projects, base, times, bare, args.rounds)
    return 0


def _ms(runs: Sequence[Took]) -> str:
    wall = statistics.median(r.wall for r in runs) * 1000
    cpu = statistics.median(r.cpu for r in runs) * 1000
    return f"{wall:6.0f} ms ({cpu:4.0f} cpu)"


def _ratio(theirs: Sequence[Took], ours: Sequence[Took]) -> tuple[float, float]:
    """The medians of the rounds' own ratios: wall, cpu."""
    pairs = list(zip(theirs, ours, strict=True))
    return (
        statistics.median(t.wall / o.wall for t, o in pairs),
        statistics.median(t.cpu / o.cpu for t, o in pairs),
    )


def report(
    projects: Sequence[Project],
    base: Project,
    times: dict[tuple[str, str], list[Took]],
    bare: list[Took],
    rounds: int,
) -> None:
    print(
        f"manifest scale: real cronwright processes, start-up included, median of {rounds} "
        "rounds; ratio = median of the rounds' own ratios to the six-job example "
        "(wall, and cpu in brackets)"
    )
    for column in COLUMNS:
        name = column.__name__
        ours = times[(name, base.label)]
        print(f"\n{name}: {base.label} {_ms(ours).strip()}")
        for p in projects[1:]:
            theirs = times[(name, p.label)]
            wall, cpu = _ratio(theirs, ours)
            goal = f"goal <= {GOAL_SCALE:.0f}x  {'ok' if wall <= GOAL_SCALE else 'MISSED'}"
            print(
                f"  {p.label:30} {_ms(theirs)}  {wall:5.2f}x ({cpu:4.2f}x)"
                f"  {goal if p.goal else ''}".rstrip()
            )
    ours = times[("validate", base.label)]
    wall, cpu = _ratio(ours, bare)
    print(
        f"\nstart-up: six-job validate {_ms(ours).strip()} against "
        f'python -c "import yaml, jsonschema, jinja2" {_ms(bare).strip()}:'
        f" {wall:.2f}x ({cpu:.2f}x)  goal <= {GOAL_START}x"
        f"  {'ok' if wall <= GOAL_START else 'MISSED'}"
    )


if __name__ == "__main__":
    sys.exit(main())
