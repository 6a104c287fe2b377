"""Every wrangler command and flag that generated/preflight.sh uses exists in the pinned
wrangler (checked against its --help), and the script is valid bash."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.codegen import generate
from engine.manifest.loader import load
from tests.fixtures.need import missing
from tests.fixtures.wrangler import REPO, Result, Wrangler

pytestmark = pytest.mark.wrangler

_FUNCTION = re.compile(r"^([A-Za-z_]\w*)\(\) \{$")
_WORD = re.compile(r"[a-z][a-z0-9-]*")
_SHELL_OPERATORS = frozenset("|&;<>()")


@dataclass(frozen=True)
class Invocation:
    line: int
    command: tuple[str, ...]
    flags: frozenset[str]


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _is_operator(token: str) -> bool:
    return bool(token) and set(token) <= _SHELL_OPERATORS


def _flags(tokens: list[str]) -> set[str]:
    return {t.split("=", 1)[0] for t in tokens if t.startswith("--")}


def wrangler_invocations(script: str) -> list[Invocation]:
    """Each ``$WRANGLER ...`` call: its command words and ``--flags``, including the flags
    that a function's call sites pass through ``"$@"``."""
    lines = script.splitlines()
    enclosing: list[str | None] = []
    current: str | None = None
    for line in lines:
        match = _FUNCTION.match(line)
        if match:
            current = match.group(1)
        enclosing.append(current)
        if line == "}":
            current = None
    passed: dict[str, set[str]] = {}
    for line in lines:
        tokens = _tokens(line)
        if tokens and _FUNCTION.match(line) is None:
            passed.setdefault(tokens[0], set()).update(_flags(tokens[1:]))
    found = []
    for number, line in enumerate(lines, 1):
        tokens = _tokens(line)
        if "$WRANGLER" not in tokens:
            continue
        args: list[str] = []
        for token in tokens[tokens.index("$WRANGLER") + 1 :]:
            if _is_operator(token):
                break
            args.append(token)
        command = []
        for token in args:
            if not _WORD.fullmatch(token):
                break
            command.append(token)
        flags = _flags(args)
        function = enclosing[number - 1]
        if "$@" in args and function is not None:
            flags |= passed.get(function, set())
        found.append(Invocation(number, tuple(command), frozenset(flags)))
    return found


@pytest.fixture(scope="module")
def preflight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = generate.render(load(REPO / "jobs.yaml"))
    if generate.PREFLIGHT not in files:
        pytest.fail("jobs.yaml's consumer is http_pull, so generate must write preflight.sh")
    out = tmp_path_factory.mktemp("preflight") / "generated"
    generate.write(files, out)
    return out / generate.PREFLIGHT


def _usage(command: tuple[str, ...]) -> re.Pattern[str]:
    """A help line naming ``wrangler <command>``: a usage line or a parent's listing.
    (An unknown subcommand prints its parent's help and exits 0.)"""
    return re.compile(rf"^\s*wrangler {re.escape(' '.join(command))}(\s|$)", re.MULTILINE)


def _help_for(wrangler: Wrangler, cwd: Path) -> Callable[[tuple[str, ...]], Result]:
    return lambda command: wrangler.run(*command, "--help", cwd=cwd)


def _problems(
    flags_by_command: dict[tuple[str, ...], set[str]], helps: dict[tuple[str, ...], Result]
) -> Iterator[str]:
    for command, flags in sorted(flags_by_command.items()):
        # A command without flags is found in its parent's list: one wrangler run fewer.
        result = helps[command] if flags else helps[command[:-1]]
        name = " ".join(command)
        if result.returncode != 0 or not _usage(command).search(result.output):
            yield f"`wrangler {name}` is not a command of this wrangler:\n{result}"
            continue
        for flag in sorted(flags):
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.output):
                yield f"`wrangler {name}` has no {flag}:\n{result}"


def test_the_parser_finds_every_wrangler_call_and_flag_of_a_script() -> None:
    script = (
        "ensure() {\n"
        '  $WRANGLER queues consumer http add "$1" "$@" 2>&1 | cat\n'
        "}\n"
        'if $WRANGLER queues info "$q" >/dev/null; then :; fi\n'
        "ensure q --batch-size 10 --dead-letter-queue=dlq\n"
    )
    assert wrangler_invocations(script) == [
        Invocation(
            2,
            ("queues", "consumer", "http", "add"),
            frozenset({"--batch-size", "--dead-letter-queue"}),
        ),
        Invocation(4, ("queues", "info"), frozenset()),
    ]


def test_every_wrangler_command_and_flag_in_preflight_exists(
    wrangler: Wrangler, preflight: Path
) -> None:
    script = preflight.read_text(encoding="utf-8")
    invocations = wrangler_invocations(script)
    assert invocations, f"no $WRANGLER calls found in preflight.sh:\n{script}"
    assert all(i.command for i in invocations), invocations
    flags_by_command: dict[tuple[str, ...], set[str]] = {}
    for invocation in invocations:
        flags_by_command.setdefault(invocation.command, set()).update(invocation.flags)
    # Every --flag in the script must reach some wrangler call, or it went unchecked.
    used = {f for line in script.splitlines() for f in _flags(_tokens(line))}
    assert used <= set().union(*flags_by_command.values()), used

    needed = sorted({c if flags else c[:-1] for c, flags in flags_by_command.items()})
    with ThreadPoolExecutor(max_workers=2) as pool:
        helps = dict(
            zip(needed, pool.map(_help_for(wrangler, preflight.parent), needed), strict=True)
        )
    problems = list(_problems(flags_by_command, helps))
    assert not problems, "\n\n".join(problems)


def test_preflight_is_valid_bash(preflight: Path) -> None:
    proc = subprocess.run(
        ["bash", "-n", str(preflight)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (proc.returncode, proc.stderr) == (0, "")


def test_preflight_passes_shellcheck(preflight: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:  # .ci/run installs it
        missing("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run(
        [shellcheck, str(preflight)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
