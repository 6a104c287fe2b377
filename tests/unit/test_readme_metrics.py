"""The README's table of metrics is the exporter's: every metric observe.Metrics exposes has a
row, every row is a metric it exports, and the runs counter's row names every outcome a
delivery can have."""

from __future__ import annotations

import re
from pathlib import Path

from engine.app.observe import Metrics
from engine.runtime.outcome import STATUSES
from tests.fixtures.ops_manifest import ops_manifest

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(cronwright_[a-z_]+)` \| (\w+) \|.*$", re.M)


def exported(tmp_path: Path) -> set[str]:
    """The metrics serve and consume expose (a counter's name with its _total)."""
    families = Metrics(ops_manifest(tmp_path)).registry.collect()
    return {f.name + ("_total" if f.type == "counter" else "") for f in families}


def test_the_readme_has_a_row_for_each_exported_metric_and_no_other(tmp_path: Path) -> None:
    documented = {name for name, _ in ROW.findall((REPO / "README.md").read_text())}
    assert documented == exported(tmp_path)


def test_the_runs_counters_row_names_every_outcome_of_a_delivery() -> None:
    readme = (REPO / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `cronwright_runs_total`")]
    outcomes = row.split("deliveries by outcome: ")[1].split(";")[0]
    assert re.findall(r"`(\w+)`", outcomes) == list(STATUSES)
