"""``cronwright init`` writes a project that validates and generates as it is, never over
an existing file; ``cronwright schema`` prints the schema its editor line points at. A
serve-only project's ``generate`` writes no Worker file and says so, and ``check`` agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.codegen import generate
from engine.manifest.loader import load

REPO = Path(__file__).resolve().parents[2]
WRITTEN = [
    ".gitignore",
    "jobs.schema.json",
    "jobs.yaml",
    "sql/count_signups.sql",
    "sql/migrations/0001_example_signups.sql",
]
SKIPPED = (
    "skipped the Worker's files (dispatch.json, preflight.sh, worker.js, wrangler.toml):"
    " {manifest} has no worker: block, so `cronwright serve` runs the jobs; add one to"
    " deploy on Cloudflare\n"
)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def init(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    root = tmp_path / "Signup Stats"
    assert main(["init", str(root), *args]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"wrote project 'signup-stats' in {root}/: jobs.yaml, jobs.schema.json,"
        " sql/count_signups.sql, sql/migrations/0001_example_signups.sql, .gitignore\n"
        "next:\n"
        f"  cd {root}\n"
        "  cronwright validate\n"
        "  cronwright generate\n"
        "  export DATABASE_URL=postgresql://USER:PASSWORD@HOST/DB\n"
        "  cronwright db migrate\n"
        "  cronwright serve\n"
    )
    return root


def test_init_writes_a_serve_only_project_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys)
    assert files_under(root) == WRITTEN
    m = load(root / "jobs.yaml")
    assert (m.name, m.cloudflare, m.queue.name) == ("signup-stats", False, "signup-stats-jobs")
    (job,) = m.jobs
    assert (job.name, job.cron, job.template) == (
        "count-signups",
        "* * * * *",
        "sql/count_signups.sql",
    )
    text = (root / "jobs.yaml").read_text()
    for word in ("analytics", "mauntic", "warmup", "make "):
        assert word not in text.lower()
    assert (root / ".gitignore").read_text().splitlines()[1:3] == [".cronwright/", ".wrangler/"]


def test_nothing_init_writes_nor_the_help_names_the_analytics_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys)
    with pytest.raises(SystemExit):
        main(["--help"])
    texts = {"--help": capsys.readouterr().out}
    texts |= {str(p): p.read_text() for p in root.rglob("*") if p.is_file()}
    example = ("aggregate-hourly", "analytics.", "mauntic", "make generate", "python -m engine")
    assert {where: [w for w in example if w in text] for where, text in texts.items()} == {
        where: [] for where in texts
    }


def test_the_editor_line_points_at_the_schema_file_init_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys)
    first = (root / "jobs.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./jobs.schema.json"
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert (root / "jobs.schema.json").read_text() == printed
    assert printed == (REPO / "engine" / "manifest" / "jobs.schema.json").read_text()
    assert json.loads(printed)["title"] == "cronwright manifest (jobs.yaml)"


def test_generate_of_a_serve_only_project_writes_jobs_md_and_says_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys)
    manifest = str(root / "jobs.yaml")
    assert main(["-m", manifest, "generate"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {root}/generated/: JOBS.md, alerts.yml, dashboard.json\n"
        + SKIPPED.format(manifest=manifest)
    )
    assert sorted(p.name for p in (root / "generated").iterdir()) == [
        "JOBS.md",
        "alerts.yml",
        "dashboard.json",
    ]
    assert main(["-m", manifest, "generate"]) == 0
    assert capsys.readouterr().out == (
        f"{root}/generated/ is up to date\n" + SKIPPED.format(manifest=manifest)
    )
    assert main(["-m", manifest, "check"]) == 0
    assert capsys.readouterr().out == f"{root}/generated/ matches {manifest}\n"


def test_a_serve_only_jobs_md_has_no_trigger_column_and_a_delimiter_per_header_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys)
    doc = generate.render(load(root / "jobs.yaml"))["JOBS.md"]
    rows = [line for line in doc.splitlines() if line.startswith("|")]
    assert rows[0] == (
        "| message type | job | cron | zone | window | retries | timeout | overlap | paused"
        " | catch-up |"
    )
    assert rows[1].count("---") == rows[0].count("|") - 1 == 10
    assert rows[2] == (
        "| `count-signups` | count-signups | `* * * * *` | UTC | the minute before the slot's"
        " | 5 attempts, 10s-60s exponential, full jitter | 30s | forbid | no | all within 3600s |"
    )
    assert "trigger" not in doc
    assert "Run by `cronwright serve` from the Postgres queue `signup-stats-jobs`." in doc


def test_check_finds_worker_files_a_serve_only_project_no_longer_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys, "--cloudflare")
    manifest = str(root / "jobs.yaml")
    assert main(["-m", manifest, "generate"]) == 0
    capsys.readouterr()
    text = (root / "jobs.yaml").read_text()
    serve_only = text[: text.index("\n# Cloudflare:")] + text[text.index("\njobs:") :]
    (root / "jobs.yaml").write_text(serve_only)
    assert main(["-m", manifest, "check"]) == 1
    out, err = capsys.readouterr()
    assert "--- generated/wrangler.toml\n+++ /dev/null\n" in out
    assert f"{root}/generated/ is stale: run `" in err
    assert main(["-m", manifest, "generate"]) == 0
    assert sorted(p.name for p in (root / "generated").iterdir()) == [
        "JOBS.md",
        "alerts.yml",
        "dashboard.json",
    ]


def test_init_cloudflare_configures_the_worker_and_generate_writes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys, "--cloudflare")
    m = load(root / "jobs.yaml")
    assert m.cloudflare and m.transport == "cloudflare"
    assert (m.worker.name, m.queue.name, m.queue.dead_letter_queue, m.worker.cron_flag) == (
        "signup-stats",
        "signup-stats-jobs",
        "signup-stats-jobs-dlq",
        "CRONWRIGHT_CRON",
    )
    assert main(["-m", str(root / "jobs.yaml"), "generate"]) == 0
    assert capsys.readouterr().out == (
        f"wrote {root}/generated/: JOBS.md, alerts.yml, dashboard.json, dispatch.json,"
        " preflight.sh, worker.js, wrangler.toml\n"
    )


def test_init_refuses_to_write_over_existing_files_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "app"
    (root / "sql").mkdir(parents=True)
    (root / "jobs.yaml").write_text("mine\n")
    (root / "sql" / "count_signups.sql").write_text("mine\n")
    assert main(["init", str(root)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"error: {root}/jobs.yaml, {root}/sql/count_signups.sql already exist; init writes"
        " no file over another; run it in a new folder (cronwright init DIR) or move those"
        " files away\n",
    )
    assert files_under(root) == ["jobs.yaml", "sql/count_signups.sql"]
    assert (root / "jobs.yaml").read_text() == "mine\n"


def test_init_into_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes").write_text("x\n")
    assert main(["init", str(tmp_path / "notes")]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}/notes is not a folder; name a new or existing folder\n"
    )


def test_init_in_the_current_folder_needs_no_cd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [
        f"wrote project '{load(tmp_path / 'jobs.yaml').name}' in ./: jobs.yaml,"
        " jobs.schema.json, sql/count_signups.sql, sql/migrations/0001_example_signups.sql,"
        " .gitignore",
        "next:",
        "  cronwright validate",
    ]


def test_schedule_shows_what_the_defaults_came_to_in_a_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = init(tmp_path, capsys)
    argv = ["-m", str(root / "jobs.yaml"), "schedule", "--next", "1", "--at", "2026-05-01T10:00Z"]
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        "project    signup-stats\n"
        "transport  postgres\n"
        "queue      signup-stats-jobs\n"
        'cron flag  CRONWRIGHT_CRON (default "true")\n'
        "worker     none (no worker: block; nothing for Cloudflare)\n"
        "\n"
        "count-signups  [count-signups]\n"
        "  cron     * * * * *\n"
        "  zone     UTC\n"
        "  next     2026-05-01T10:01Z Fri\n"
    )


def test_render_of_a_job_without_a_window_shows_the_slot_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "purge.sql").write_text(
        "DELETE FROM sessions WHERE expires_at < {{ slot }};\n"
    )
    (tmp_path / "jobs.yaml").write_text(
        'version: 1\njobs:\n  purge:\n    cron: "30 2 * * *"\n    sql: sql/purge.sql\n'
    )
    argv = ["-m", str(tmp_path / "jobs.yaml"), "render", "purge", "--at", "2026-05-01T02:30Z"]
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        "-- purge slot 2026-05-01T02:30:00+00:00\n"
        "-- statement 1\n"
        "DELETE FROM sessions WHERE expires_at < $1;\n"
        '-- params: {"$1": "2026-05-01 02:30:00+00:00"}\n'
    )


def test_a_manifest_without_any_cloudflare_key_generates_no_worker_file(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "purge.sql").write_text(
        "DELETE FROM sessions WHERE expires_at < {{ slot }};\n"
    )
    (tmp_path / "jobs.yaml").write_text(
        'version: 1\njobs:\n  purge:\n    cron: "30 2 * * *"\n    sql: sql/purge.sql\n'
    )
    m = load(tmp_path / "jobs.yaml")
    assert not m.cloudflare
    assert list(generate.render(m)) == ["JOBS.md", "alerts.yml", "dashboard.json"]
    assert generate.worker_files(m) == (
        "dispatch.json",
        "preflight.sh",
        "worker.js",
        "wrangler.toml",
    )
