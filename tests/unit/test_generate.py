"""The generator's outputs for manifests the analytics one doesn't exercise."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from engine.codegen import generate
from engine.manifest.loader import load

REPO = Path(__file__).resolve().parents[2]

MANIFEST = """\
version: 1
plan: free
worker: {name: gen-worker, compatibility_date: "2026-04-01", cron_flag: RUN_CRON, cron_enabled: false}
queue:
  name: gen-jobs
  binding: JOBS
  dead_letter_queue: gen-jobs-dlq
  consumer: {type: worker, script: consumer.js, max_batch_size: 25, max_batch_timeout_seconds: 2,
             retry_delay_seconds: 10, max_concurrency: 3}
environments:
  staging: {queue: gen-jobs-staging, dead_letter_queue: gen-jobs-staging-dlq, vars: {LEVEL: debug}}
jobs:
  a:
    type: gen.a
    cron: "0,30 * * * *"
    sql: sql/a.sql
    window: {period: hour, offset: -1}
    retry: {max_attempts: 9}
  b:
    type: gen.b
    cron: "*/30 * * * *"
    sql: sql/a.sql
    window: {period: hour, offset: -1}
  c:
    type: gen.c
    cron: "0 9 * * MON"
    sql: sql/a.sql
    window: {period: day, offset: -1}
    paused: true
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "a.sql").write_text("SELECT {{ slot }};\n")
    (tmp_path / "consumer.js").write_text("export default { async queue() {} };\n")
    (tmp_path / "jobs.yaml").write_text(MANIFEST)
    return tmp_path / "jobs.yaml"


def test_equivalent_crons_share_one_canonical_trigger_and_paused_jobs_send_nothing(
    tmp_path: Path,
) -> None:
    table = generate.dispatch_table(load(project(tmp_path)))
    assert table["triggers"] == {"*/30 * * * *": ["gen.a", "gen.b"]}
    assert table["jobs"]["gen.c"]["paused"] is True
    assert table["jobs"]["gen.c"]["trigger"] == "0 9 * * MON"


def test_worker_consumer_gets_a_consumer_block_in_every_environment(tmp_path: Path) -> None:
    config = tomllib.loads(generate.render(load(project(tmp_path)))[generate.WRANGLER])
    expected = {
        "queue": "gen-jobs",
        "max_batch_size": 25,
        "max_batch_timeout": 2,
        "max_retries": 8,
        "retry_delay": 10,
        "dead_letter_queue": "gen-jobs-dlq",
        "max_concurrency": 3,
    }
    assert config["queues"]["consumers"] == [expected]
    staging = config["env"]["staging"]
    assert staging["queues"]["consumers"] == [
        {**expected, "queue": "gen-jobs-staging", "dead_letter_queue": "gen-jobs-staging-dlq"}
    ]
    assert staging["vars"] == {"LEVEL": "debug", "RUN_CRON": "false"}
    assert config["vars"] == {"RUN_CRON": "false"}


def test_worker_consumer_has_no_preflight_script(tmp_path: Path) -> None:
    assert generate.PREFLIGHT not in generate.render(load(project(tmp_path)))


def test_worker_module_imports_the_consumer_relative_to_the_output_dir(tmp_path: Path) -> None:
    m = load(project(tmp_path))
    default = generate.render(m)["worker.js"]
    assert 'import consumer from "../consumer.js";' in default
    elsewhere = generate.render(m, out_dir=tmp_path / "build" / "cf")["worker.js"]
    assert 'import consumer from "../../consumer.js";' in elsewhere
    assert "export default { ...consumer, scheduled };" in elsewhere


def test_cron_flag_default_is_baked_into_the_worker(tmp_path: Path) -> None:
    worker = generate.render(load(project(tmp_path)))["worker.js"]
    assert 'const CRON_FLAG = "RUN_CRON";' in worker
    assert "const CRON_ENABLED_DEFAULT = false;" in worker


def test_dispatch_json_and_wrangler_agree_on_the_queue(tmp_path: Path) -> None:
    files = generate.render(load(project(tmp_path)))
    table = json.loads(files[generate.DISPATCH])
    config = tomllib.loads(files[generate.WRANGLER])
    assert config["queues"]["producers"] == [{"binding": table["binding"], "queue": table["queue"]}]


def modes(out: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [out, *sorted(out.iterdir())]}


@pytest.mark.parametrize(
    ("umask", "directory", "file", "script"),
    [(0o022, 0o755, 0o644, 0o755), (0o027, 0o750, 0o640, 0o750), (0o077, 0o700, 0o600, 0o700)],
    ids=["umask-022", "umask-027", "umask-077"],
)
def test_generated_dir_and_files_get_ordinary_permissions_under_the_umask(
    tmp_path: Path, umask: int, directory: int, file: int, script: int
) -> None:
    m = load(REPO / "jobs.yaml")
    out = tmp_path / "generated"
    previous = os.umask(umask)
    try:
        generate.write(generate.render(m), out)
        first = modes(out)
        generate.write(generate.render(m), out)  # replacing an existing tree
    finally:
        os.umask(previous)
    expected = {name: file for name in generate.render(m)}
    assert first == modes(out) == {
        **expected, "generated": directory, generate.PREFLIGHT: script
    }  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated"]  # no staging left
