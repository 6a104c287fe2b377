"""The committed generated/ is what jobs.yaml produces, and the real wrangler accepts its
wrangler.toml for the top level and every environment, with no warning."""

from __future__ import annotations

from pathlib import Path

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
