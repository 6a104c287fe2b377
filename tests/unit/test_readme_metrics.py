"""The README's table of metrics is the exporter's: every metric observe.py exports has a
row, every row is a metric it exports, and the runs counter's row names every outcome a
delivery can have."""

from __future__ import annotations

import re
from pathlib import Path

from engine.runtime.outcome import STATUSES

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(cronwright_[a-z_]+)` \| (\w+) \|.*$", re.M)


def exported() -> set[str]:
    """The names observe.py gives its metrics (a counter's gets _total when exposed)."""
    text = (REPO / "engine" / "app" / "observe.py").read_text()
    names = set(re.findall(r"\"(cronwright_[a-z_]+)\"", text))
    return {name + "_total" if name == "cronwright_runs" else name for name in names}


def test_the_readme_has_a_row_for_each_exported_metric_and_no_other() -> None:
    documented = {name for name, _ in ROW.findall((REPO / "README.md").read_text())}
    assert documented == exported()


def test_the_runs_counters_row_names_every_outcome_of_a_delivery() -> None:
    readme = (REPO / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `cronwright_runs_total`")]
    outcomes = row.split("deliveries by outcome: ")[1].split(";")[0]
    assert re.findall(r"`(\w+)`", outcomes) == list(STATUSES)
