"""The cron flag has one reading (engine/core/cronflag.py): the bundled Worker in Node,
the local scheduler, the reconciler and the `reconcile` command give the same answer for
every value, with either manifest default."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.app.cli import main
from engine.app.reconciler import Reconciler
from engine.app.scheduler import Scheduler
from engine.codegen import generate
from engine.core.cronflag import WHITESPACE
from engine.core.model import Manifest
from engine.manifest.loader import load
from engine.runtime.scheduling import cron_enabled
from tests.fixtures.worker_node import bundle
from tests.fixtures.wrangler import REPO, Wrangler

pytestmark = pytest.mark.wrangler

FLAG = "ENABLE_ANALYTICS_CRON"
UNSET = None
# (value of the variable, expected with the manifest's default on, with it off)
TABLE: list[tuple[str | None, bool, bool]] = [
    (UNSET, True, False),
    ("", True, False),
    ("true", True, True),
    ("TRUE", True, True),
    (" True ", True, True),
    ("\ttrue\n", True, True),
    ("\ufefftrue", True, True),
    ("false", False, False),
    ("1", False, False),
    ("yes", False, False),
    (" ", False, False),
    ("tru e", False, False),
]
EVALUATE = """
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const input = JSON.parse(readFileSync(0, "utf8"));
const worker = await import(pathToFileURL(input.bundle).href);
process.stdout.write(JSON.stringify(input.envs.map((env) => worker.cronEnabled(env))));
"""


@pytest.fixture(scope="module")
def manifests() -> dict[bool, Manifest]:
    on = load(REPO / "jobs.yaml")
    return {True: on, False: replace(on, worker=replace(on.worker, cron_enabled=False))}


@pytest.fixture(scope="module")
def workers(
    wrangler: Wrangler, manifests: dict[bool, Manifest], tmp_path_factory: pytest.TempPathFactory
) -> dict[bool, Path]:
    out = {}
    for default, manifest in manifests.items():
        root = tmp_path_factory.mktemp(f"flag-{default}")
        generate.write(generate.render(manifest), root / "generated")
        out[default] = bundle(wrangler, root / "generated" / generate.WRANGLER, root / "out")
    return out


def in_node(module: Path, values: list[str | None]) -> list[bool]:
    script = module.with_name("evaluate.mjs")
    script.write_text(EVALUATE)
    envs = [{} if v is None else {FLAG: v} for v in values]
    proc = subprocess.run(
        ["node", str(script)],
        input=json.dumps({"bundle": str(module), "envs": envs}).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    answers: list[bool] = json.loads(proc.stdout)
    return answers


def environ(value: str | None) -> dict[str, str]:
    return {} if value is None else {FLAG: value}


def python_paths(manifest: Manifest, value: str | None) -> dict[str, bool]:
    env = environ(value)
    scheduler = Scheduler(
        db=None,  # type: ignore[arg-type]  (the flag is read at construction)
        store=None,  # type: ignore[arg-type]
        manifest=manifest,
        sender=None,  # type: ignore[arg-type]
        clock=None,  # type: ignore[arg-type]
        sleep=None,  # type: ignore[arg-type]
        environ=env,
    )
    reconciler = Reconciler(None, manifest, None, None, environ=env)  # type: ignore[arg-type]
    return {
        "core": cron_enabled(manifest, env),
        "scheduler": scheduler.enabled,
        "reconciler": reconciler.enabled,
    }


@pytest.mark.parametrize("default", [True, False])
def test_every_path_reads_every_flag_value_as_the_worker_does(
    default: bool, manifests: dict[bool, Manifest], workers: dict[bool, Path]
) -> None:
    values = [value for value, _, _ in TABLE]
    expected = [on if default else off for _, on, off in TABLE]
    assert in_node(workers[default], values) == expected
    for value, want in zip(values, expected, strict=True):
        assert python_paths(manifests[default], value) == {
            "core": want,
            "scheduler": want,
            "reconciler": want,
        }, repr(value)


@pytest.mark.parametrize(("value", "on"), [("TRUE", True), (" True ", True), ("yes", False)])
def test_the_reconcile_command_reads_the_flag_as_the_worker_does(
    value: str, on: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(FLAG, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    code = main(["-m", str(REPO / "jobs.yaml"), "reconcile", "--dry-run"])
    err = capsys.readouterr().err
    if on:  # on: it goes on to the database, which is not configured here
        assert (code, err) == (
            2,
            "error: DATABASE_URL is not set; export DATABASE_URL=postgresql://user@host/db\n",
        )
    else:
        assert code == 0
        assert err.startswith(f"the cron flag {FLAG} is off: nothing enqueued")


FLAGGY = st.text(
    alphabet=st.sampled_from(
        [*WHITESPACE, "\x1c", "\x85", "t", "r", "u", "e", "T", "R", "U", "E", "x"]
    ),
    max_size=8,
)


@settings(max_examples=10, deadline=None)
@given(values=st.lists(st.one_of(st.none(), FLAGGY), min_size=50, max_size=50))
def test_any_value_reads_the_same_in_node_and_python(
    values: list[str | None], manifests: dict[bool, Manifest], workers: dict[bool, Path]
) -> None:
    for default in (True, False):
        python = [cron_enabled(manifests[default], environ(v)) for v in values]
        assert in_node(workers[default], values) == python
