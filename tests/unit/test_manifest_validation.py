"""Every validation rule, each asserting the whole message with its location."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.core.errors import ManifestErrors
from engine.core.model import CatchUp, CatchUpPolicy, ConsumerType, Overlap, Period
from engine.manifest.loader import load

BASE = """\
version: 1
plan: paid
trigger_budget: 10
worker:
  name: demo-worker
  compatibility_date: "2026-04-01"
  cron_flag: ENABLE_CRON
queue:
  name: demo-jobs
  binding: JOBS
  dead_letter_queue: demo-jobs-dlq
r2_bucket:
  binding: WARMUP_R2
  bucket_name: demo-bucket
jobs:
  hourly:
    type: demo.hourly
    cron: "0 * * * *"
    sql: sql/hourly.sql
    window: {period: hour, offset: -1}
    retry: {max_attempts: 5, initial_delay_seconds: 30, max_delay_seconds: 600}
  nightly:
    type: demo.nightly
    cron: "0 2 * * *"
    sql: sql/nightly.sql
    window: {period: day, offset: -1}
"""

TEMPLATE = "SELECT {{ window_start }}, {{ window_end }};\n"


def write(tmp_path: Path, text: str, templates: dict[str, str] | None = None) -> Path:
    (tmp_path / "sql").mkdir(exist_ok=True)
    for name, body in (templates or {"hourly.sql": TEMPLATE, "nightly.sql": TEMPLATE}).items():
        (tmp_path / "sql" / name).write_text(body)
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, templates: dict[str, str] | None = None) -> list[str]:
    path = write(tmp_path, text, templates)
    with pytest.raises(ManifestErrors) as info:
        load(path)
    prefix = f"{path}:"
    return [str(e).replace(prefix, "jobs.yaml:") for e in info.value.errors]


def test_valid_manifest_loads_into_the_model(tmp_path: Path) -> None:
    m = load(write(tmp_path, BASE))
    assert [j.name for j in m.jobs] == ["hourly", "nightly"]
    hourly = m.job_by_type("demo.hourly")
    assert hourly is not None
    assert hourly.window.period is Period.HOUR and hourly.window.offset == -1
    assert hourly.overlap is Overlap.FORBID and not hourly.paused
    assert m.queue.consumer.type is ConsumerType.HTTP_PULL
    assert m.consumer_max_retries == 4 + 3  # the jobs' most, plus room for hand-backs


def test_misspelt_key_is_reported_with_the_closest_key(tmp_path: Path) -> None:
    text = BASE.replace('    cron: "0 2 * * *"', '    crn: "0 2 * * *"')
    assert problems(tmp_path, text) == [
        "jobs.yaml:23:5: jobs.nightly: missing required key 'cron'; add 'cron:'",
        "jobs.yaml:24:5: jobs.nightly.crn: unknown key; did you mean 'cron'?",
    ]


def test_every_problem_is_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    text = (
        BASE.replace("plan: paid", "plan: pro")
        .replace("max_attempts: 5", "max_attempts: 500")
        .replace("period: day", "period: days")
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:2:7: plan: 'pro' is not one of free, paid; use one of free, paid",
        "jobs.yaml:21:27: jobs.hourly.retry.max_attempts: 500 is above the maximum 101 "
        "(Cloudflare allows max_retries <= 100, so at most 101 attempts); use a value <= 101",
        "jobs.yaml:26:22: jobs.nightly.window.period: 'days' is not one of minute, hour, day, week, month; "
        "did you mean 'day'?",
    ]


def test_yaml_syntax_error_names_its_position(tmp_path: Path) -> None:
    text = BASE.replace("  name: demo-worker", "  name: [demo-worker")
    assert problems(tmp_path, text) == [
        "jobs.yaml:6:21: YAML syntax error: expected ',' or ']', but got ':'; "
        "fix the YAML at this position",
    ]


def test_duplicate_job_names_are_rejected(tmp_path: Path) -> None:
    text = BASE + textwrap.indent(
        'hourly:\n  type: demo.other\n  cron: "5 * * * *"\n  sql: sql/hourly.sql\n'
        "  window: {period: hour, offset: -1}\n",
        "  ",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:27:3: jobs.hourly: duplicate key 'hourly' (first defined at line 16); "
        "keep one: names must be unique",
    ]


def test_duplicate_message_types_are_rejected(tmp_path: Path) -> None:
    text = BASE.replace("type: demo.nightly", "type: demo.hourly")
    assert problems(tmp_path, text) == [
        "jobs.yaml:23:11: jobs.nightly.type: message type 'demo.hourly' is already used by "
        "job 'hourly'; give every job its own message type",
    ]


def test_numeric_weekday_is_rejected_spelling_out_both_readings(tmp_path: Path) -> None:
    text = BASE.replace('"0 2 * * *"', '"0 2 * * 1-5"')
    assert problems(tmp_path, text) == [
        "jobs.yaml:24:11: jobs.nightly.cron: weekday '1-5' is ambiguous: SUN-THU on Cloudflare, "
        "MON-FRI in classic cron; write SUN-THU or MON-FRI",
    ]


def test_missing_template_is_reported(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE, {"hourly.sql": TEMPLATE}) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/nightly.sql' does not exist; "
        "create sql/nightly.sql or fix the path",
    ]


def test_template_with_syntax_error_is_reported(tmp_path: Path) -> None:
    bad = {"hourly.sql": TEMPLATE, "nightly.sql": "SELECT {% if %};\n"}
    assert problems(tmp_path, BASE, bad) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/nightly.sql' line 1: Expected an "
        "expression, got 'end of statement block'; fix the Jinja syntax",
    ]


def test_template_reaching_for_class_and_globals_fails_validation_with_its_location(
    tmp_path: Path,
) -> None:
    escape = (
        "SELECT 1;\n{% if false %}{{ slot.__class__ }}{% endif %}\n{{ params['__globals__'] }}\n"
    )
    assert problems(tmp_path, BASE, {"hourly.sql": TEMPLATE, "nightly.sql": escape}) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/nightly.sql' line 2: reaches for "
        "'__class__', which the template sandbox forbids; use only the runtime's variables "
        "and their public fields",
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/nightly.sql' line 3: reaches for "
        "'__globals__', which the template sandbox forbids; use only the runtime's variables "
        "and their public fields",
    ]


def test_template_using_a_variable_the_runtime_lacks_is_reported(tmp_path: Path) -> None:
    bad = {"hourly.sql": TEMPLATE, "nightly.sql": "SELECT {{ now }};\n"}
    assert problems(tmp_path, BASE, bad) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/nightly.sql' uses undefined variable "
        "'now' (the runtime provides job, params, rerun, settle_seconds, slot, window_end, "
        "window_start); "
        "use only the runtime's variables",
    ]


def test_template_reading_an_undeclared_param_is_reported(tmp_path: Path) -> None:
    bad = {"hourly.sql": TEMPLATE, "nightly.sql": "SELECT {{ params.limit }};\n"}
    assert problems(tmp_path, BASE, bad) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template sql/nightly.sql: 'dict object' has no "
        "attribute 'limit'; define it under the job's 'params:'",
    ]


def test_template_outside_sql_dir_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace("sql: sql/nightly.sql", "sql: sql/../nightly.sql")
    assert problems(tmp_path, text) == [
        "jobs.yaml:25:10: jobs.nightly.sql: template 'sql/../nightly.sql' is outside sql/; "
        "keep templates under sql/",
    ]


def test_job_with_both_sql_and_action_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace(
        "    sql: sql/nightly.sql\n",
        "    sql: sql/nightly.sql\n    action: {name: warmup-reset, sql: sql/nightly.sql}\n",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:23:5: jobs.nightly: a job needs exactly one of 'sql' or 'action'; keep "
        "'sql: sql/FILE.sql' for a SQL job or 'action:' for a built-in or python action",
    ]


def test_warmup_reset_without_bucket_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace(
        "r2_bucket:\n  binding: WARMUP_R2\n  bucket_name: demo-bucket\n", ""
    ).replace(
        "    sql: sql/nightly.sql\n", "    action: {name: warmup-reset, sql: sql/nightly.sql}\n"
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:22:20: jobs.nightly.action.name: the warmup-reset action needs an R2 bucket; "
        "add an 'r2_bucket:' section",
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "  binding: JOBS\n",
            "  binding: JOBS\n  consumer: {max_batch_size: 101}\n",
            "jobs.yaml:11:30: queue.consumer.max_batch_size: 101 is above the maximum 100 "
            "(Cloudflare allows 1-100 messages per batch); use a value <= 100",
        ),
        (
            "  binding: JOBS\n",
            "  binding: JOBS\n  consumer: {max_batch_timeout_seconds: 61}\n",
            "jobs.yaml:11:41: queue.consumer.max_batch_timeout_seconds: 61 is above the maximum 60 "
            "(Cloudflare allows a batch timeout of 0-60 s); use a value <= 60",
        ),
        (
            "initial_delay_seconds: 30",
            "initial_delay_seconds: 43201",
            "jobs.yaml:21:53: jobs.hourly.retry.initial_delay_seconds: 43201 is above the maximum "
            "43200 (Cloudflare delays at most 43200 s (12 h)); use a value <= 43200",
        ),
        (
            "max_attempts: 5",
            "max_attempts: 102",
            "jobs.yaml:21:27: jobs.hourly.retry.max_attempts: 102 is above the maximum 101 "
            "(Cloudflare allows max_retries <= 100, so at most 101 attempts); use a value <= 101",
        ),
    ],
    ids=["batch-size", "batch-timeout", "retry-delay", "max-retries"],
)
def test_queue_and_retry_values_beyond_cloudflare_limits_are_rejected(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert problems(tmp_path, BASE.replace(old, new, 1)) == [message]


def test_max_delay_below_initial_delay_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace("max_delay_seconds: 600", "max_delay_seconds: 10")
    assert problems(tmp_path, text) == [
        "jobs.yaml:21:76: jobs.hourly.retry.max_delay_seconds: max delay 10 is below the "
        "initial delay 30; raise max_delay_seconds to at least 30",
    ]


def test_more_schedules_than_the_budget_fold_onto_one_trigger(tmp_path: Path) -> None:
    m = load(write(tmp_path, BASE.replace("trigger_budget: 10", "trigger_budget: 1")))
    assert m.trigger_budget == 1  # "0 2 * * *" folds into "0 * * * *" and wastes nothing


def test_a_fold_that_wastes_more_than_the_limit_is_rejected_with_the_merge_to_make(
    tmp_path: Path,
) -> None:
    text = BASE.replace("trigger_budget: 10", "trigger_budget: 1\nfold_max_wasted_per_day: 20")
    text = text.replace('cron: "0 2 * * *"', 'cron: "30 2 * * *"')
    assert problems(tmp_path, text) == [
        "jobs.yaml:17:3: jobs: 2 distinct schedules exceed the budget of 1 triggers, and the "
        "best folding wastes 23.0 invocations a day (limit 20): demo.hourly, demo.nightly on "
        "'*/30 * * * *'; give those jobs one schedule, raise trigger_budget to 2, or raise "
        "fold_max_wasted_per_day",
    ]


def test_free_plan_caps_the_budget_at_five(tmp_path: Path) -> None:
    text = BASE.replace("plan: paid", "plan: free")
    assert problems(tmp_path, text) == [
        "jobs.yaml:3:17: trigger_budget: 10 exceeds the free plan's 5 cron triggers; set "
        "trigger_budget to at most 5",
    ]


def test_jobs_with_the_same_schedule_share_one_trigger_in_the_budget(tmp_path: Path) -> None:
    text = BASE.replace("trigger_budget: 10", "trigger_budget: 1").replace(
        '"0 2 * * *"', '"0 * * * *"'
    )
    assert len(load(write(tmp_path, text)).jobs) == 2


def test_compatibility_date_after_the_pinned_runtime_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace('"2026-04-01"', '"2026-09-01"')
    assert problems(tmp_path, text) == [
        "jobs.yaml:6:23: worker.compatibility_date: '2026-09-01' is later than the pinned workerd "
        "runtime (2026-05-03); use 2026-05-03 or earlier",
    ]


def test_manifest_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    assert problems(tmp_path, "- just\n- a list\n") == [
        "jobs.yaml:1:1: the manifest must be a mapping, got list; start from the example "
        "jobs.yaml in the README",
    ]


def test_bad_job_name_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace("  nightly:", "  Nightly_Job:")
    assert problems(tmp_path, text) == [
        "jobs.yaml:22:3: jobs.Nightly_Job: name 'Nightly_Job' is not allowed; job names are "
        "lower-case letters, digits and '-', starting with a letter",
    ]


def test_worker_consumer_without_its_script_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace("  binding: JOBS\n", "  binding: JOBS\n  consumer: {type: worker}\n")
    assert problems(tmp_path, text) == [
        "jobs.yaml:11:13: queue.consumer: a worker consumer needs a 'script'; name the module "
        "that exports the queue() handler, or use type: http_pull",
    ]


def test_worker_consumer_script_must_exist(tmp_path: Path) -> None:
    text = BASE.replace(
        "  binding: JOBS\n", "  binding: JOBS\n  consumer: {type: worker, script: consumer.js}\n"
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:11:36: queue.consumer.script: script 'consumer.js' does not exist; "
        "create consumer.js or fix the path",
    ]


def test_unreadable_manifest_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestErrors) as info:
        load(tmp_path / "missing.yaml")
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'missing.yaml'}: cannot read manifest: No such file or directory; "
        "run from the directory holding jobs.yaml or pass its path"
    ]


def test_job_whose_deadline_plus_the_margin_outlasts_the_pull_consumers_lease_is_rejected(
    tmp_path: Path,
) -> None:
    text = BASE.replace(
        "  binding: JOBS\n", "  binding: JOBS\n  consumer: {visibility_timeout_seconds: 600}\n"
    ).replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    timeout_seconds: 541\n",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:28:22: jobs.nightly.timeout_seconds: timeout 541 s plus a 60 s margin exceeds "
        "the queue's visibility timeout (600 s): the lease could lapse mid-run and the message be "
        "redelivered; raise queue.consumer.visibility_timeout_seconds to at least 601 or lower "
        "timeout_seconds to at most 540",
    ]


@pytest.mark.parametrize("script", ["../consumer.js", "/etc/passwd", "src/../../consumer.js"])
def test_worker_consumer_script_outside_the_project_is_rejected(
    tmp_path: Path, script: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "consumer.js").write_text("export default {};\n")
    text = BASE.replace(
        "  binding: JOBS\n", f"  binding: JOBS\n  consumer: {{type: worker, script: {script}}}\n"
    )
    col = 36
    assert problems(project, text) == [
        f"jobs.yaml:11:{col}: queue.consumer.script: script '{script}' is outside the project "
        "folder; keep the consumer module in the folder of the manifest or below it",
    ]


def test_worker_consumer_script_reached_through_a_symlink_out_of_the_project_is_rejected(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "consumer.js").write_text("export default {};\n")
    (project / "consumer.js").symlink_to(tmp_path / "consumer.js")
    text = BASE.replace(
        "  binding: JOBS\n", "  binding: JOBS\n  consumer: {type: worker, script: consumer.js}\n"
    )
    assert problems(project, text) == [
        "jobs.yaml:11:36: queue.consumer.script: script 'consumer.js' is outside the project "
        "folder; keep the consumer module in the folder of the manifest or below it",
    ]


def test_catch_up_defaults_to_all_within_a_day_or_the_schedules_longest_gap(
    tmp_path: Path,
) -> None:
    text = BASE + (
        "  monthly:\n"
        "    type: demo.monthly\n"
        '    cron: "0 3 1 * *"\n'
        "    sql: sql/hourly.sql\n"
        "    window: {period: month, offset: -1}\n"
    )
    m = load(write(tmp_path, text))
    by_name = {j.name: j.catch_up for j in m.jobs}
    assert by_name["hourly"] == CatchUp(policy=CatchUpPolicy.ALL, within_seconds=86_400)
    # 31 days: the longest gap between two first-of-the-month slots (July to August).
    assert by_name["monthly"] == CatchUp(policy=CatchUpPolicy.ALL, within_seconds=31 * 86_400)


def test_catch_up_is_read_into_the_model(tmp_path: Path) -> None:
    text = BASE.replace(
        "    window: {period: hour, offset: -1}\n",
        "    window: {period: hour, offset: -1}\n"
        "    catch_up: {policy: latest, within_seconds: 7200}\n",
    )
    hourly = load(write(tmp_path, text)).job_by_name("hourly")
    assert hourly is not None
    assert hourly.catch_up == CatchUp(policy=CatchUpPolicy.LATEST, within_seconds=7200)


def test_a_catch_up_window_shorter_than_the_schedules_period_is_located(tmp_path: Path) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n"
        "    catch_up: {policy: latest, within_seconds: 3600}\n",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:27:48: jobs.nightly.catch_up.within_seconds: 3600 s does not cover one"
        " period of the job's schedule (86400 s between slots); raise within_seconds to at"
        " least 86400 or set policy: none"
    ]


def test_a_short_catch_up_window_is_fine_when_nothing_is_caught_up(tmp_path: Path) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    catch_up: {policy: none, within_seconds: 60}\n",
    )
    nightly = load(write(tmp_path, text)).job_by_name("nightly")
    assert nightly is not None and nightly.catch_up.policy is CatchUpPolicy.NONE


def test_an_unknown_catch_up_policy_is_refused(tmp_path: Path) -> None:
    text = BASE.replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    catch_up: {policy: some}\n",
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:27:24: jobs.nightly.catch_up.policy: 'some' is not one of all, latest,"
        " none; use one of all, latest, none"
    ]


def test_job_whose_deadline_plus_the_margin_fits_the_lease_is_accepted(tmp_path: Path) -> None:
    text = BASE.replace(
        "  binding: JOBS\n", "  binding: JOBS\n  consumer: {visibility_timeout_seconds: 600}\n"
    ).replace(
        "    window: {period: day, offset: -1}\n",
        "    window: {period: day, offset: -1}\n    timeout_seconds: 540\n",
    )
    nightly = load(write(tmp_path, text)).job_by_name("nightly")
    assert nightly is not None and nightly.timeout_seconds == 540


def test_an_unknown_time_zone_is_rejected_with_the_closest_names(tmp_path: Path) -> None:
    text = BASE.replace(
        '    cron: "0 2 * * *"\n', '    cron: "0 2 * * *"\n    timezone: America/New_Yrok\n'
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:25:15: jobs.nightly.timezone: unknown time zone 'America/New_Yrok'; "
        "did you mean America/New_York, America/Nuuk, America/Nome?",
    ]


def test_dst_rules_without_a_time_zone_are_rejected(tmp_path: Path) -> None:
    text = BASE.replace('    cron: "0 2 * * *"\n', '    cron: "0 2 * * *"\n    dst: {gap: skip}\n')
    assert problems(tmp_path, text) == [
        "jobs.yaml:25:10: jobs.nightly.dst: dst rules apply only to a job with a timezone; "
        "add timezone: <IANA name> or remove dst",
    ]


def test_a_zoned_job_is_built_with_its_zone_rules_and_zoned_window(tmp_path: Path) -> None:
    text = BASE.replace(
        '    cron: "0 2 * * *"\n',
        '    cron: "0 2 * * *"\n    timezone: Europe/Berlin\n    dst: {gap: skip, overlap: both}\n',
    )
    job = load(write(tmp_path, text)).job_by_name("nightly")
    assert job is not None
    assert (job.timezone, job.dst.gap.value, job.dst.overlap.value) == (
        "Europe/Berlin",
        "skip",
        "both",
    )
    assert job.window.timezone == "Europe/Berlin"


def test_two_environments_sending_to_one_queue_are_rejected(tmp_path: Path) -> None:
    text = BASE.replace("jobs:\n", "environments:\n  production: {}\n  canary: {}\njobs:\n", 1)
    assert problems(tmp_path, text) == [
        "jobs.yaml:16:3: environments.production: environments 'canary' and 'production' both "
        "send to queue 'demo-jobs', so every slot would be sent twice; give "
        "environments.production its own 'queue:'",
    ]
