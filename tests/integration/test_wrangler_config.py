"""The committed generated/ is what jobs.yaml produces, and the real wrangler accepts its
wrangler.toml for the top level and every environment, with no warning."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from engine.codegen import generate
from engine.core.model import Environment, Manifest
from engine.manifest.loader import load
from tests.fixtures.wrangler import REPO, Wrangler, bindings_in, warnings_in

pytestmark = pytest.mark.wrangler


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load(REPO / "jobs.yaml")


@pytest.fixture(scope="module")
def generated(manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """generate.render(jobs.yaml) written to a temporary generated/: wrangler leaves a
    .wrangler/ directory beside the config it reads, so it never runs in the repo's."""
    out = tmp_path_factory.mktemp("repo") / "generated"
    generate.write(generate.render(manifest), out)
    return out


def expected_bindings(manifest: Manifest, env: Environment | None) -> set[str]:
    """What wrangler must list for ``env``: every binding, with the environment's values."""
    enabled = manifest.worker.cron_enabled
    if env is not None and env.cron_enabled is not None:
        enabled = env.cron_enabled
    queue = (env.queue if env else None) or manifest.queue.name
    rows = {
        f"env.{manifest.queue.binding} ({queue})",
        f'env.{manifest.worker.cron_flag} ("{"true" if enabled else "false"}")',
    }
    if manifest.bucket:
        bucket = (env.bucket_name if env else None) or manifest.bucket.bucket_name
        rows.add(f"env.{manifest.bucket.binding} ({bucket})")
    if manifest.dataset:
        dataset = (env.dataset if env else None) or manifest.dataset.dataset
        rows.add(f"env.{manifest.dataset.binding} ({dataset})")
    return rows


def test_committed_generated_dir_is_what_jobs_yaml_produces(generated: Path) -> None:
    fresh = generate.read_tree(generated)
    committed = generate.read_tree(REPO / "generated")
    assert committed == fresh, "generated/ is stale: run `make generate`\n" + generate.diff(
        fresh, REPO / "generated"
    )


def test_deploy_dry_run_accepts_every_environment_without_a_warning(
    wrangler: Wrangler, manifest: Manifest, generated: Path, tmp_path: Path
) -> None:
    targets: list[Environment | None] = [None, *manifest.environments]
    assert len(targets) > 1, "jobs.yaml should declare the staging and production environments"
    problems = []
    for env in targets:
        name = env.name if env else ""
        result = wrangler.deploy_dry_run(
            generated / generate.WRANGLER, name, tmp_path / (name or "top-level")
        )
        missing_rows = expected_bindings(manifest, env) - bindings_in(result.output)
        if result.returncode != 0 or warnings_in(result.output) or missing_rows:
            problems.append(f"--env {name!r}: missing bindings {sorted(missing_rows)}\n{result}")
    assert not problems, "\n\n".join(problems)


def effective(config: dict[str, Any], env: str) -> tuple[str, list[str], list[str]]:
    """(Worker name, crons, queues it sends to) as wrangler resolves ``--env env``: triggers
    are inherited from the top level, bindings are not."""
    section = config["env"][env] if env else config
    name = f"{config['name']}-{env}" if env else config["name"]
    crons = section.get("triggers", config.get("triggers", {})).get("crons", [])
    queues = [p["queue"] for p in section.get("queues", {}).get("producers", [])]
    return name, crons, queues


def readme_deploy_targets() -> list[str]:
    """The --env of every `wrangler deploy` command in the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [
        line for line in text.splitlines() if "wrangler deploy" in line and "--dry-run" not in line
    ]
    envs = [re.search(r"--env[ =]\"?([\w-]*)\"?", line) for line in lines]
    return [m.group(1) if m else "" for m in envs]


def test_at_most_one_deployed_worker_per_queue_fires_the_crons(
    wrangler: Wrangler, manifest: Manifest, generated: Path, tmp_path: Path
) -> None:
    config = tomllib.loads((generated / generate.WRANGLER).read_text())
    triggers = list(json.loads((generated / generate.DISPATCH).read_text())["triggers"])
    targets = ["", *(e.name for e in manifest.environments)]
    firing: dict[str, list[str]] = {}
    for env in targets:
        result = wrangler.deploy_dry_run(
            generated / generate.WRANGLER, env, tmp_path / (env or "top")
        )
        assert result.returncode == 0, str(result)
        name, crons, queues = effective(config, env)
        if crons:
            assert crons == triggers
            for queue in queues:
                firing.setdefault(queue, []).append(name)
    assert {q: names for q, names in firing.items() if len(names) > 1} == {}
    assert firing[manifest.queue.name] == [f"{manifest.worker.name}-production"]
    # The README deploys only Workers that carry crons, and each queue's at most once.
    deployed = readme_deploy_targets()
    assert deployed == ["production", "staging"]
    assert all(effective(config, env)[1] for env in deployed)
