"""What no manifest can do to validation: expand aliases without bound, nest without
bound, or hide bytes that are not UTF-8. Each refusal is one located line, found before
anything walks the tree, with libyaml and with PyYAML's own parser alike."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.core.errors import ManifestErrors
from engine.manifest import yamlmarks
from engine.manifest.loader import load
from tests.unit.test_manifest_validation import BASE, problems, write

PARSERS = ["libyaml", "python"]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "python":
        monkeypatch.setattr(yamlmarks, "_LOADERS", yamlmarks._LOADERS[-1:])
    elif len(yamlmarks._LOADERS) < 2:
        pytest.skip("PyYAML was built without libyaml")
    yield request.param


def with_params(lines: str) -> str:
    """BASE with ``lines`` as the hourly job's params (they start on line 22)."""
    return BASE.replace(
        "    window: {period: hour, offset: -1}\n",
        "    window: {period: hour, offset: -1}\n    params:\n" + lines,
        1,
    )


BOMB = "".join(
    [
        '      a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n',
        *(
            f"      {k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, k in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_alias_bomb_is_refused_with_its_location(tmp_path: Path, parser: str) -> None:
    started = time.process_time()
    assert problems(tmp_path, with_params(BOMB)) == [
        "jobs.yaml:27:14: jobs.hourly.params.f.0: YAML aliases expand the manifest by more "
        "than 100000 nodes (alias '*e' adds 66430); share smaller blocks through anchors, "
        "or write the values out",
    ]
    assert time.process_time() - started < 5  # it took minutes and gigabytes


def test_an_alias_inside_the_node_it_names_is_refused(tmp_path: Path, parser: str) -> None:
    assert problems(tmp_path, with_params("      loop: &loop [1, [2, *loop]]\n")) == [
        "jobs.yaml:22:27: jobs.hourly.params.loop.1.1: alias '*loop' is inside the node it "
        "names, which would make the manifest infinite; write the values out instead of the "
        "alias",
    ]


def test_nesting_deeper_than_the_bound_is_refused(tmp_path: Path, parser: str) -> None:
    deep = "      deep: " + "[" * 5000 + "]" * 5000 + "\n"
    path = ".".join(["jobs.hourly.params.deep", *["0"] * 60])
    assert problems(tmp_path, with_params(deep)) == [
        f"jobs.yaml:22:73: {path}: the YAML nests deeper than 64 levels; flatten this value",
    ]


def test_anchors_shared_within_the_bound_are_read_as_copies(tmp_path: Path, parser: str) -> None:
    text = BASE.replace(
        "    retry: {max_attempts: 5, initial_delay_seconds: 30, max_delay_seconds: 600}\n",
        "    retry: &retry {max_attempts: 3, initial_delay_seconds: 30, max_delay_seconds: 600}\n",
    ).replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    retry: *retry\n",
    )
    m = load(write(tmp_path, text))
    assert [j.retry.max_attempts for j in m.jobs] == [3, 3]


def test_an_error_inside_an_aliased_block_is_located_where_the_block_is_written(
    tmp_path: Path, parser: str
) -> None:
    text = BASE.replace(
        "    retry: {max_attempts: 5, initial_delay_seconds: 30, max_delay_seconds: 600}\n",
        "    retry: &retry {max_attempts: 0}\n",
    ).replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    retry: *retry\n",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:21:34: jobs.hourly.retry.max_attempts: 0 is below the minimum 1 "
        "(Cloudflare allows max_retries <= 100, so at most 101 attempts); use a value >= 1",
        "jobs.yaml:21:34: jobs.nightly.retry.max_attempts: 0 is below the minimum 1 "
        "(Cloudflare allows max_retries <= 100, so at most 101 attempts); use a value >= 1",
    ]


def test_a_manifest_that_is_not_utf8_is_located_at_its_first_bad_byte(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    path.write_bytes(BASE.replace("demo-worker", "démo-worker").encode("latin-1"))
    assert problems_of(path) == [
        "jobs.yaml:5:10: not UTF-8 (byte 0xe9: invalid continuation byte); save the file as UTF-8",
    ]


def test_a_template_that_is_not_utf8_is_located_in_the_template(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    (tmp_path / "sql" / "nightly.sql").write_bytes(b"SELECT 1;\n-- caf\xe9\nSELECT 2;\n")
    assert problems_of(path) == [
        "sql/nightly.sql:2:7: not UTF-8 (byte 0xe9: invalid continuation byte); "
        "save the file as UTF-8",
    ]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as info:
        load(path)
    return [str(e).replace(f"{path.parent}/", "") for e in info.value.errors]


def test_a_control_character_is_located_on_its_line(tmp_path: Path, parser: str) -> None:
    text = BASE.replace("demo-bucket", "demo\x07bucket")
    assert problems(tmp_path, text) == [
        "jobs.yaml:14:20: YAML syntax error: unacceptable character #x0007; "
        "fix the YAML at this position",
    ]


def test_libyaml_and_pythons_parser_read_the_same_marks_and_data() -> None:
    text = (Path(__file__).resolve().parents[2] / "jobs.yaml").read_text(encoding="utf-8")
    fast = yamlmarks.load(text)
    python = yamlmarks._load(yamlmarks._LOADERS[-1], text)
    assert (fast.data, fast.values, fast.keys) == (python.data, python.values, python.keys)


def test_a_value_yaml_cannot_make_is_located(tmp_path: Path, parser: str) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    description: 2026-02-31\n",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:27:18: YAML syntax error: cannot read this value: day is out of range "
        "for month; fix the YAML at this position",
    ]


def test_a_template_with_an_unknown_filter_is_located(tmp_path: Path) -> None:
    templates = {"hourly.sql": "SELECT 1;\n", "nightly.sql": "SELECT 1;\n{{ slot | nope }}\n"}
    assert problems(tmp_path, BASE, templates) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/nightly.sql' line 2: No filter "
        "named 'nope'.; fix the Jinja syntax",
    ]


def test_what_a_terminal_would_not_print_is_escaped_so_each_error_stays_one_line(
    tmp_path: Path,
) -> None:
    text = BASE.replace("  nightly:\n", '  "night\\nly\\u202e":\n')
    assert problems(tmp_path, text) == [
        "jobs.yaml:22:3: jobs.night\\nly\\u202e: name 'night\\nly\\u202e' is not allowed; "
        "job names are lower-case letters, digits and '-', starting with a letter",
    ]


def test_check_reads_a_generated_file_that_is_not_utf8_as_stale(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    assert main(["-m", str(path), "generate"]) == 0
    (tmp_path / "generated" / "JOBS.md").write_bytes(b"caf\xe9\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["-m", str(path), "check"]) == 1
    assert "-caf\ufffd\n" in out.getvalue()


def test_a_template_path_no_file_system_takes_does_not_exist(tmp_path: Path) -> None:
    text = BASE.replace("    sql: sql/nightly.sql\n", '    sql: "sql/night\\0ly.sql"\n')
    assert problems(tmp_path, text) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/night\\x00ly.sql' does not exist; "
        "create sql/night\\x00ly.sql or fix the path",
    ]


@pytest.mark.parametrize("key", ["migrations", "templates"])
def test_a_project_folder_no_file_system_takes_does_not_exist(tmp_path: Path, key: str) -> None:
    text = BASE.replace("version: 1\n", f'version: 1\n{key}: "db\\0x"\n', 1)
    assert problems(tmp_path, text)[0] == (
        f"jobs.yaml:2:{len(key) + 3}: {key}: folder 'db\\x00x' does not exist; "
        "create db\\x00x/ or fix the path"
    )


def test_a_window_period_of_the_wrong_type_is_one_schema_error(tmp_path: Path) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n", "    window: {period: [day], offset: 0}\n"
    )
    assert problems(tmp_path, text) == [
        'jobs.yaml:26:22: jobs.nightly.window.period: ["day"] is not one of minute, hour, day, week, '
        "month; did you mean 'day'?",
    ]


def test_names_that_yaml_reads_as_numbers_are_refused_as_names(tmp_path: Path) -> None:
    text = BASE.replace("  nightly:\n", "  5:\n").replace(
        "    retry: {max_attempts: 5,", "    retry: {1: 2, max_attempts: 5,"
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:21:13: jobs.hourly.retry.1: unknown key; allowed keys: backoff, "
        "initial_delay_seconds, jitter, max_attempts, max_delay_seconds",
        "jobs.yaml:22:3: jobs.5: name 5 is not allowed; job names are lower-case letters, "
        "digits and '-', starting with a letter",
    ]


def test_a_consumer_script_name_too_long_for_the_file_system_does_not_exist(
    tmp_path: Path,
) -> None:
    name = "x" * 300 + ".js"
    text = BASE.replace(
        "  binding: JOBS\n", f"  binding: JOBS\n  consumer: {{type: worker, script: {name}}}\n"
    )
    assert problems(tmp_path, text) == [
        f"jobs.yaml:11:36: queue.consumer.script: script '{name}' does not exist; "
        f"create {name} or fix the path",
    ]


def test_a_mapping_keyed_by_a_date_is_shown_in_an_error_not_a_traceback(tmp_path: Path) -> None:
    text = BASE.replace("  name: demo-jobs\n", "  name: {2026-01-01: 0}\n")
    assert problems(tmp_path, text) == [
        "jobs.yaml:9:9: queue.name: expected string, got mapping {datetime.date(2026, 1, 1): "
        "0}; use lower-case letters, digits and '-' (at most 63)",
    ]
