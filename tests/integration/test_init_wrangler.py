"""``cronwright init --cloudflare`` adds what a Worker deployment needs: the real wrangler
accepts the generated configuration with every binding and no warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.app.cli import main
from tests.fixtures.wrangler import Wrangler, bindings_in, warnings_in

pytestmark = pytest.mark.wrangler


def test_wrangler_accepts_the_worker_of_an_init_cloudflare_project(
    wrangler: Wrangler, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "billing"
    assert main(["init", str(root), "--cloudflare"]) == 0
    assert main(["-m", str(root / "jobs.yaml"), "generate"]) == 0
    capsys.readouterr()
    result = wrangler.deploy_dry_run(root / "generated" / "wrangler.toml", "", tmp_path / "out")
    assert result.returncode == 0, str(result)
    assert warnings_in(result.output) == []
    assert bindings_in(result.output) == {
        "env.JOBS (billing-jobs)",
        'env.CRONWRIGHT_CRON ("true")',
    }
