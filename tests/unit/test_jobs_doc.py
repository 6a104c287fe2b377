"""generated/JOBS.md read by a real Markdown parser (markdown-it-py, CommonMark with
tables), as GitHub or an editor's preview would render it."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from engine.codegen import generate
from engine.manifest.loader import load
from tests.fixtures.ops_manifest import ops_manifest

REPO = Path(__file__).resolve().parents[2]

COLUMNS = [
    "message type", "job", "cron", "zone", "trigger", "window", "retries", "timeout",
    "overlap", "paused", "catch-up",
]  # fmt: skip


def tables(markdown: str) -> list[list[list[str]]]:
    """Each rendered table as its rows of cell texts, the header row first."""
    found: list[list[list[str]]] = []
    row: list[str] = []
    tokens: list[Token] = MarkdownIt("commonmark").enable("table").parse(markdown)
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            row.append(tokens[i + 1].content)
        elif token.type == "tr_close":
            found[-1].append(row)
    return found


def test_jobs_md_renders_one_jobs_table_with_a_row_per_job(tmp_path: Path) -> None:
    manifest = ops_manifest(tmp_path)
    doc = generate.render(manifest)[generate.DOCS]
    # A zoned job's trigger covers its zone's offsets: that is the fold's to decide.
    paris = f"`{generate.dispatch_table(manifest)['jobs']['ops.nightly']['trigger']}`"
    jobs, triggers = tables(doc)
    assert jobs == [
        COLUMNS,
        [
            "`ops.hourly`", "hourly", "`0 * * * *`", "UTC", "`0 * * * *`",
            "the hour before the slot's", "5 attempts, 30s-900s exponential, full jitter",
            "300s", "forbid", "no", "all within 86400s",
        ],
        [
            "`ops.nightly`", "nightly", "`30 2 * * *`", "Europe/Paris", paris,
            "the day before the slot's", "5 attempts, 30s-900s exponential, full jitter",
            "1800s", "forbid", "no", "all within 86400s",
        ],
        [
            "`ops.parked`", "parked", "`0 9 * * MON`", "UTC", "`0 9 * * MON`",
            "the day before the slot's", "5 attempts, 30s-900s exponential, full jitter",
            "300s", "forbid", "yes", "all within 604800s",
        ],
    ]  # fmt: skip
    assert triggers[0] == ["trigger", "sends"]
    assert sorted(triggers[1:]) == sorted(
        [[paris, "`ops.nightly`"], ["`0 * * * *`", "`ops.hourly`"]]
    )


def test_the_repos_own_jobs_md_renders_as_a_table_of_its_six_jobs() -> None:
    doc = (REPO / "generated" / generate.DOCS).read_text(encoding="utf-8")
    jobs = tables(doc)[0]
    names = sorted(j.name for j in load(REPO / "jobs.yaml").jobs)
    assert jobs[0] == COLUMNS
    assert sorted(row[1] for row in jobs[1:]) == names
    assert {len(row) for row in jobs} == {len(COLUMNS)}
