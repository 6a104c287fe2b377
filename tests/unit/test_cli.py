"""The command line: exit codes, drift check, atomic generation, fast start-up."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.app.cli import build_parser, main
from engine.codegen import generate
from engine.manifest.loader import load

REPO = Path(__file__).resolve().parents[2]


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d``, subfolders included, by relative path."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_committed_generated_dir_matches_the_manifest() -> None:
    files = generate.render(load(REPO / "jobs.yaml"))
    assert generate.read_tree(REPO / "generated") == files


def test_generated_files_carry_a_do_not_edit_header() -> None:
    for name, text in generate.render(load(REPO / "jobs.yaml")).items():
        assert "DO NOT EDIT" in text.splitlines()[0] + text.splitlines()[1], name


def test_validate_exits_0_on_a_valid_manifest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-m", str(project / "jobs.yaml"), "validate"]) == 0
    assert "ok (6 jobs)" in capsys.readouterr().out


def test_validate_prints_every_problem_and_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (project / "jobs.yaml").read_text()
    text = text.replace('cron: "0 2 * * *"', 'cron: "0 2 * * 2-6"').replace(
        "max_batch_size: 10", "max_batch_size: 500"
    )
    (project / "jobs.yaml").write_text(text)
    assert main(["-m", str(project / "jobs.yaml"), "validate"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "2 problems found"
    assert err[0].endswith(
        "queue.consumer.max_batch_size: 500 is above the maximum 100 "
        "(Cloudflare allows 1-100 messages per batch); use a value <= 100"
    )
    assert err[1].endswith(
        "jobs.generate-daily-reports.cron: weekday '2-6' is ambiguous: MON-FRI on Cloudflare, "
        "TUE-SAT in classic cron; write MON-FRI or TUE-SAT"
    )


def test_failed_generate_leaves_generated_exactly_as_it_was(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "generated" / "wrangler.toml").write_text("# hand edit\n")
    # What `wrangler dev -c generated/wrangler.toml` leaves beside it must survive too.
    state = project / "generated" / ".wrangler" / "state" / "v3"
    state.mkdir(parents=True)
    (state / "cache.sqlite").write_bytes(b"wrangler's local state")
    before = snapshot(project / "generated")
    assert ".wrangler/state/v3/cache.sqlite" in before
    text = (project / "jobs.yaml").read_text().replace('cron: "0 4 * * *"', 'cron: "0 4 31 2 *"')
    (project / "jobs.yaml").write_text(text)
    assert main(["-m", str(project / "jobs.yaml"), "generate"]) == 2
    assert snapshot(project / "generated") == before


def test_generate_replaces_stale_output_and_removes_files_no_longer_produced(project: Path) -> None:
    (project / "generated" / "stale.js").write_text("old\n")
    (project / "generated" / "wrangler.toml").write_text("# hand edit\n")
    assert main(["-m", str(project / "jobs.yaml"), "generate"]) == 0
    files = generate.render(load(REPO / "jobs.yaml"))
    assert snapshot(project / "generated") == {n: t.encode() for n, t in files.items()}


def test_check_prints_a_diff_and_exits_1_when_generated_is_stale(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (project / "jobs.yaml").read_text().replace('cron: "0 5 * * *"', 'cron: "30 5 * * *"')
    (project / "jobs.yaml").write_text(text)
    assert main(["-m", str(project / "jobs.yaml"), "check"]) == 1
    out = capsys.readouterr()
    assert (
        '+crons = ["0 * * * *", "0 0 * * *", "0 2 * * *", "0 3 1 * *", "0 4 * * *", "30 5 * * *"]'
        in out.out
    )
    assert "is stale: run `make generate`" in out.err


def test_check_passes_on_a_fresh_tree(project: Path) -> None:
    assert main(["-m", str(project / "jobs.yaml"), "check"]) == 0


def test_render_prints_sql_and_bind_parameters_without_a_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "-m",
        str(REPO / "jobs.yaml"),
        "render",
        "analytics.enrichment-metrics",
        "--at",
        "2026-10-31T05:00:00Z",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "-- analytics.enrichment-metrics slot 2026-10-31T05:00:00+00:00 "
        "window [2026-10-30T00:00:00+00:00, 2026-10-31T00:00:00+00:00)\n"
    )
    assert '"$1": "2026-10-30 00:00:00+00:00"' in out or '"$1": "2026-10-31 00:00:00+00:00"' in out


def test_schedule_lists_each_job_with_its_trigger_and_next_slots(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "-m",
        str(REPO / "jobs.yaml"),
        "schedule",
        "--next",
        "2",
        "--at",
        "2026-10-31T10:30:00Z",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "monthly-usage-summary  [analytics.monthly-usage-summary]\n"
        "  cron     0 3 1 * *\n"
        "  zone     UTC\n"
        "  trigger  0 3 1 * *\n"
        "  next     2026-11-01T03:00Z Sun\n"
        "  next     2026-12-01T03:00Z Tue\n"
    ) in out


def test_cron_explains_an_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "0,30 9 * * mon-fri", "--next", "2", "--at", "2026-11-27T09:10:00Z"]) == 0
    assert capsys.readouterr().out == (
        "expression  0,30 9 * * mon-fri\n"
        "canonical   */30 9 * * MON-FRI\n"
        "means       at 09:00 and 09:30 UTC on Monday through Friday\n"
        "next        2026-11-27T09:30Z Fri\n"
        "next        2026-11-30T09:00Z Mon\n"
    )


def test_cron_rejects_an_ambiguous_weekday_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "0 17 * * 1"]) == 2
    assert capsys.readouterr().err == (
        "error: weekday '1' is ambiguous: SUN on Cloudflare, MON in classic cron; write SUN or MON\n"
    )


@pytest.mark.parametrize(
    "command", ["validate", "generate", "check", "schedule", "cron 0 * * * *", "schema"]
)
def test_fast_commands_never_import_asyncpg_boto3_or_httpx(project: Path, command: str) -> None:
    code = (
        "import sys; from engine.app.cli import main; "
        f"rc = main(['-m', {str(project / 'jobs.yaml')!r}, *{command.split(' ', 1)[:1]!r}"
        + (f", {command.split(' ', 1)[1]!r}" if " " in command else "")
        + "]); "
        "bad = sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('asyncpg', 'boto3', 'botocore', 'httpx')); "
        "print(bad); sys.exit(rc)"
    )
    # `schedule` reads runtime pauses from Postgres only when DATABASE_URL is set.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_render_of_an_unknown_job_names_the_known_types_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "-m",
        str(REPO / "jobs.yaml"),
        "render",
        "analytics.nope",
        "--at",
        "2026-10-31T05:00:00Z",
    ]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: unknown job 'analytics.nope' (give a job name or its message type); known jobs "
        "(types): aggregate-hourly (analytics.aggregate-hourly), enrichment-metrics "
        "(analytics.enrichment-metrics), generate-daily-reports "
        "(analytics.generate-daily-reports), monthly-usage-summary "
        "(analytics.monthly-usage-summary), score-distribution (analytics.score-distribution), "
        "warmup-daily-reset (analytics.warmup-daily-reset)\n"
    )


def test_render_of_a_misspelt_job_name_suggests_the_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "-m",
        str(REPO / "jobs.yaml"),
        "render",
        "agregate-hourly",
        "--at",
        "2026-10-31T05:00:00Z",
    ]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: unknown job 'agregate-hourly' (give a job name or its message type); "
        "did you mean 'aggregate-hourly'?\n"
    )


def parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under ``parser``, with its command path."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_help_starts_with_a_one_line_description_and_ends_with_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.splitlines()[2] == (
        "Recurring jobs from one jobs.yaml: Cloudflare cron config and a replay-safe runtime."
    )
    assert "examples:\n  cronwright validate" in out
    assert "asyncio" not in out


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for prog, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{prog} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_slots_with_an_empty_range_exits_2_before_touching_the_database(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = str(project / "jobs.yaml")
    args = ["-m", manifest, "slots", "aggregate-hourly", "--from", "2026-10-31T10:00:00Z"]
    assert main([*args, "--to", "2026-10-31T10:00:00Z"]) == 2
    assert capsys.readouterr().err == (
        "error: --to 2026-10-31T10:00:00Z is not after --from 2026-10-31T10:00:00Z\n"
    )


def test_slots_of_an_unknown_job_names_the_known_jobs_and_types_and_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = str(project / "jobs.yaml")
    argv = ["-m", manifest, "slots", "nope", "--from", "2026-10-31", "--to", "2026-11-01"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "error: unknown job 'nope' (give a job name or its message type); known jobs (types):"
        " aggregate-hourly (analytics.aggregate-hourly),"
        " enrichment-metrics (analytics.enrichment-metrics),"
        " generate-daily-reports (analytics.generate-daily-reports),"
        " monthly-usage-summary (analytics.monthly-usage-summary),"
        " score-distribution (analytics.score-distribution),"
        " warmup-daily-reset (analytics.warmup-daily-reset)\n"
    )


def test_slots_over_a_range_too_large_to_list_exits_2_with_the_fix(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.runtime import accounting

    monkeypatch.setattr(accounting, "MAX_SLOTS", 24)
    manifest = str(project / "jobs.yaml")
    argv = ["-m", manifest, "slots", "aggregate-hourly", "--from", "2026-10-30", "--to"]
    assert main([*argv, "2026-10-31T01:00:00Z"]) == 2
    assert capsys.readouterr().err == (
        "error: more than 24 slots between 2026-10-30T00:00:00Z and 2026-10-31T01:00:00Z;"
        " narrow the range (or the job's catch_up.within_seconds)\n"
    )


def test_schedule_still_shows_the_manifest_when_the_database_for_runtime_pauses_is_down(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://ops:s3cret-pw@127.0.0.1:1/cronwright")
    args = ["-m", str(REPO / "jobs.yaml"), "schedule", "--next", "1"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.split("\n\n", 1)[1].startswith("aggregate-hourly  [analytics.aggregate-hourly]\n")
    assert err == (
        "warning: runtime pauses not shown: cannot connect to"
        " postgresql://ops:***@127.0.0.1:1/cronwright: connection: [Errno 111] Connect call"
        " failed ('127.0.0.1', 1)\n"
    )
