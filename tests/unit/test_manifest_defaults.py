"""Only what a job needs is required: a manifest of version and jobs is valid, and every
default (the project's name, the Worker and queue named after it, the transport, the
folders, a job's type and window) is what a new user would expect."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.core.errors import ManifestErrors
from engine.core.model import Manifest, Period, Plan, Transport
from engine.manifest.build import project_name
from engine.manifest.loader import load
from engine.schedule.slots import settles

MINIMAL = """\
version: 1
jobs:
  refresh-summary:
    cron: "*/5 * * * *"
    sql: sql/refresh_summary.sql
"""

SLOT_ONLY = "INSERT INTO summary (at) VALUES ({{ slot }}) ON CONFLICT DO NOTHING;\n"
WINDOWED = "SELECT {{ window_start }}, {{ window_end }};\n"


def project(
    root: Path, text: str, templates: dict[str, str] | None = None, *, folder: str = "shop"
) -> Path:
    """A project folder named ``folder`` under ``root``; returns its manifest's path."""
    base = root / folder
    (base / "sql").mkdir(parents=True)
    for name, body in (templates or {"refresh_summary.sql": SLOT_ONLY}).items():
        (base / "sql" / name).write_text(body)
    path = base / "jobs.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as info:
        load(path)
    return [str(e).replace(f"{path}:", "jobs.yaml:") for e in info.value.errors]


def loaded(tmp_path: Path, text: str, templates: dict[str, str] | None = None) -> Manifest:
    return load(project(tmp_path, text, templates))


def test_a_manifest_of_version_and_jobs_is_valid(tmp_path: Path) -> None:
    m = loaded(tmp_path, MINIMAL)
    (job,) = m.jobs
    assert (job.name, job.cron, job.sql) == (
        "refresh-summary",
        "*/5 * * * *",
        "sql/refresh_summary.sql",
    )


def test_the_project_is_named_after_its_folder_and_names_the_worker_and_queues(
    tmp_path: Path,
) -> None:
    m = loaded(tmp_path, MINIMAL)
    assert m.name == "shop"
    assert (m.worker.name, m.queue.name, m.queue.dead_letter_queue) == (
        "shop",
        "shop-jobs",
        "shop-jobs-dlq",
    )
    assert (m.queue.binding, m.worker.cron_flag, m.worker.compatibility_date) == (
        "JOBS",
        "CRONWRIGHT_CRON",
        "2026-04-01",
    )
    assert m.worker.cron_enabled and m.worker.main == "worker.js"
    assert (m.plan, m.trigger_budget) == (Plan.FREE, 5)


def test_a_name_key_overrides_the_folder_and_explicit_names_override_the_name(
    tmp_path: Path,
) -> None:
    text = MINIMAL.replace("version: 1\n", "version: 1\nname: billing\nqueue: {name: bq}\n")
    m = loaded(tmp_path, text)
    assert (m.name, m.worker.name, m.queue.name, m.queue.dead_letter_queue) == (
        "billing",
        "billing",
        "bq",
        "billing-jobs-dlq",
    )


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("My Shop_Jobs", "my-shop-jobs"),
        ("--Ops..2026--", "ops-2026"),
        ("Été", "t"),
        ("___", "cronwright"),
        ("a" * 80, "a" * 54),
        ("x" * 53 + "-yz", "x" * 53),
    ],
)
def test_a_folder_name_is_made_a_valid_worker_name(folder: str, name: str) -> None:
    assert project_name(folder) == name


def test_a_folder_with_an_unusable_name_still_loads_under_the_fallback_name(
    tmp_path: Path,
) -> None:
    m = load(project(tmp_path, MINIMAL, folder="Jobs (v2)!"))
    assert (m.name, m.queue.name) == ("jobs-v2", "jobs-v2-jobs")


def test_a_bad_name_is_located_with_the_rule(tmp_path: Path) -> None:
    path = project(tmp_path, MINIMAL.replace("version: 1\n", "version: 1\nname: Shop\n"))
    assert problems(path) == [
        "jobs.yaml:2:7: name: 'Shop' is not a valid value; use lower-case letters, digits and"
        " '-' (at most 54, so that '<name>-jobs-dlq' fits 63)",
    ]


def test_without_a_worker_block_the_manifest_does_not_configure_cloudflare_and_uses_postgres(
    tmp_path: Path,
) -> None:
    m = loaded(tmp_path, MINIMAL)
    assert (m.cloudflare, m.transport) == (False, Transport.POSTGRES)


def test_a_worker_block_configures_cloudflare_and_makes_it_the_transport(tmp_path: Path) -> None:
    m = loaded(tmp_path, MINIMAL.replace("version: 1\n", "version: 1\nworker: {}\n"))
    assert (m.cloudflare, m.transport, m.worker.name) == (True, Transport.CLOUDFLARE, "shop")


def test_transport_postgres_may_be_chosen_with_a_worker(tmp_path: Path) -> None:
    text = MINIMAL.replace("version: 1\n", "version: 1\ntransport: postgres\nworker: {}\n")
    m = loaded(tmp_path, text)
    assert (m.cloudflare, m.transport) == (True, Transport.POSTGRES)


def test_transport_cloudflare_without_a_worker_is_refused(tmp_path: Path) -> None:
    path = project(tmp_path, MINIMAL.replace("version: 1\n", "version: 1\ntransport: cloudflare\n"))
    assert problems(path) == [
        "jobs.yaml:2:12: transport: transport cloudflare needs the Worker that sends slots to"
        " the queue, and this manifest has no 'worker:' block; add a 'worker:' block, or use"
        " transport: postgres (cronwright serve)",
    ]


def test_an_unknown_transport_is_refused_with_the_choices(tmp_path: Path) -> None:
    path = project(tmp_path, MINIMAL.replace("version: 1\n", "version: 1\ntransport: sqs\n"))
    assert problems(path) == [
        "jobs.yaml:2:12: transport: 'sqs' is not one of postgres, cloudflare; use one of"
        " postgres, cloudflare",
    ]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("plan: paid", "plan"),
        ("trigger_budget: 3", "trigger_budget"),
        ("fold_max_wasted_per_day: 10", "fold_max_wasted_per_day"),
        ("analytics_engine: {binding: LOGS, dataset: logs}", "analytics_engine"),
    ],
)
def test_worker_settings_without_a_worker_block_are_refused(
    tmp_path: Path, line: str, key: str
) -> None:
    path = project(tmp_path, MINIMAL.replace("version: 1\n", f"version: 1\n{line}\n"))
    assert problems(path) == [
        f"jobs.yaml:2:1: {key}: '{key}' only matters to the Cloudflare Worker, which this"
        f" manifest does not configure; add a 'worker:' block to generate the Worker's files,"
        f" or remove '{key}'",
    ]


def test_a_worker_consumer_without_a_worker_block_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "version: 1\n", "version: 1\nqueue: {consumer: {type: worker, script: c.js}}\n"
    )
    path = project(tmp_path, text)
    (path.parent / "c.js").write_text("export default {};\n")
    assert problems(path) == [
        "jobs.yaml:2:26: queue.consumer.type: a worker consumer runs inside the Worker, and"
        " this manifest has no 'worker:' block; add a 'worker:' block, or remove the consumer"
        " type",
    ]


def test_a_serve_only_job_may_outlast_the_cloudflare_lease(tmp_path: Path) -> None:
    # The visibility timeout is Cloudflare's; serve's local queue renews its own lease.
    m = loaded(tmp_path, MINIMAL + "    timeout_seconds: 3600\n")
    assert m.jobs[0].timeout_seconds == 3600


def test_the_trigger_budget_is_not_checked_without_a_worker(tmp_path: Path) -> None:
    jobs = "".join(
        f'  j{i}:\n    cron: "{i} {i} * * *"\n    sql: sql/refresh_summary.sql\n' for i in range(12)
    )
    m = loaded(tmp_path, "version: 1\njobs:\n" + jobs)
    assert len(m.jobs) == 12
    with_worker = "version: 1\nworker: {}\nfold_max_wasted_per_day: 0\njobs:\n" + jobs
    path = project(tmp_path, with_worker, folder="cf")
    assert problems(path)[0].startswith(
        "jobs.yaml:5:3: jobs: 12 distinct schedules exceed the budget of 5 triggers"
    )


def test_type_defaults_to_the_job_name(tmp_path: Path) -> None:
    m = loaded(tmp_path, MINIMAL)
    assert m.jobs[0].type == "refresh-summary"
    assert m.find_job("refresh-summary") is m.jobs[0]


def test_a_default_type_that_collides_with_another_jobs_type_is_located_at_the_job(
    tmp_path: Path,
) -> None:
    text = MINIMAL + (
        '  other:\n    type: refresh-summary\n    cron: "0 * * * *"\n'
        "    sql: sql/refresh_summary.sql\n"
    )
    assert problems(project(tmp_path, text)) == [
        "jobs.yaml:7:11: jobs.other.type: message type 'refresh-summary' is already used by"
        " job 'refresh-summary'; give every job its own message type",
    ]
    reordered = 'version: 1\njobs:\n  a:\n    type: b\n    cron: "0 * * * *"\n' + (
        '    sql: sql/refresh_summary.sql\n  b:\n    cron: "0 * * * *"\n'
        "    sql: sql/refresh_summary.sql\n"
    )
    assert problems(project(tmp_path, reordered, folder="two")) == [
        "jobs.yaml:7:3: jobs.b: message type 'b' is already used by job 'a'; give every job"
        " its own message type",
    ]


def test_a_job_name_that_is_no_message_type_needs_a_type(tmp_path: Path) -> None:
    text = MINIMAL.replace("  refresh-summary:", "  refresh--summary:")
    assert problems(project(tmp_path, text)) == [
        "jobs.yaml:3:3: jobs.refresh--summary: job name 'refresh--summary' cannot be its message"
        " type (the default); add 'type:' with lower-case words joined by '.' or '-', or rename"
        " the job",
    ]


def test_a_job_without_cron_is_told_to_add_one(tmp_path: Path) -> None:
    path = project(tmp_path, MINIMAL.replace('    cron: "*/5 * * * *"\n', ""))
    assert problems(path) == [
        "jobs.yaml:4:5: jobs.refresh-summary: missing required key 'cron'; add 'cron:'",
    ]


def test_a_template_that_reads_no_window_bound_needs_no_window(tmp_path: Path) -> None:
    m = loaded(tmp_path, MINIMAL)
    job = m.jobs[0]
    assert job.window is None
    assert job.reads == frozenset({"slot"})
    assert job.bounds(datetime(2026, 5, 1, 10, 5, tzinfo=UTC)) == (None, None)


@pytest.mark.parametrize(
    ("template", "read"),
    [
        ("SELECT {{ window_start }};\n", "window_start"),
        ("SELECT {{ window_end }};\n", "window_end"),
        (WINDOWED, "window_start and window_end"),
    ],
)
def test_a_template_that_reads_a_window_bound_needs_a_window(
    tmp_path: Path, template: str, read: str
) -> None:
    path = project(tmp_path, MINIMAL, {"refresh_summary.sql": template})
    assert problems(path) == [
        f"jobs.yaml:5:10: jobs.refresh-summary.sql: template 'sql/refresh_summary.sql' reads"
        f" {read} but the job has no window; add window: {{period: hour, offset: -1}} for the"
        " hour before the slot (or minute, day, week, month)",
    ]


def test_period_minute_windows_count_whole_minutes(tmp_path: Path) -> None:
    text = MINIMAL + "    window: {period: minute, offset: -5}\n    timezone: Asia/Kolkata\n"
    m = loaded(tmp_path, text, {"refresh_summary.sql": WINDOWED})
    job = m.jobs[0]
    assert job.window is not None and job.window.period is Period.MINUTE
    assert job.bounds(datetime(2026, 5, 1, 10, 5, tzinfo=UTC)) == (
        datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 5, 1, 10, 1, tzinfo=UTC),
    )


def test_a_minute_window_that_ends_after_its_slot_is_refused(tmp_path: Path) -> None:
    text = MINIMAL + "    window: {period: minute, offset: 0}\n"
    path = project(tmp_path, text, {"refresh_summary.sql": WINDOWED})
    assert problems(path) == [
        "jobs.yaml:6:38: jobs.refresh-summary.window.offset: offset 0 of period minute ends at"
        " the next full minute; use offset -1 for the previous minute, or set"
        " allow_open_window: true if the template never reads window_end",
    ]


def test_a_job_settles_only_when_its_template_reads_settle_seconds(tmp_path: Path) -> None:
    keeps_a_day = "SELECT {{ window_start }}, {{ window_end }}, {{ settle_seconds }};\n"
    text = MINIMAL.replace("*/5 * * * *", "0 * * * *") + (
        "    window: {period: hour, offset: -1}\n"
        '  hourly-plain:\n    cron: "0 * * * *"\n    sql: sql/plain.sql\n'
        "    window: {period: hour, offset: -1}\n"
    )
    m = loaded(tmp_path, text, {"refresh_summary.sql": keeps_a_day, "plain.sql": WINDOWED})
    by_name = {j.name: j for j in m.jobs}
    assert settles(by_name["refresh-summary"])
    assert not settles(by_name["hourly-plain"])
    assert by_name["refresh-summary"].reads == frozenset(
        {"window_start", "window_end", "settle_seconds"}
    )


def test_the_project_folders_default_to_sql_and_sql_migrations(tmp_path: Path) -> None:
    m = loaded(tmp_path, MINIMAL)
    assert (m.templates, m.migrations) == ("sql", "sql/migrations")
    assert m.migrations_dir == tmp_path / "shop" / "sql" / "migrations"


def test_templates_may_live_under_another_folder(tmp_path: Path) -> None:
    text = "version: 1\ntemplates: queries\nmigrations: db\n" + MINIMAL.removeprefix(
        "version: 1\n"
    ).replace("sql/refresh_summary.sql", "queries/refresh_summary.sql")
    path = project(tmp_path, text)
    (path.parent / "queries").mkdir()
    (path.parent / "db").mkdir()
    (path.parent / "queries" / "refresh_summary.sql").write_text(SLOT_ONLY)
    m = load(path)
    assert (m.templates, m.migrations, m.jobs[0].template) == (
        "queries",
        "db",
        "queries/refresh_summary.sql",
    )


def test_a_template_outside_the_templates_folder_is_refused(tmp_path: Path) -> None:
    text = "version: 1\ntemplates: queries\n" + MINIMAL.removeprefix("version: 1\n")
    path = project(tmp_path, text)
    (path.parent / "queries").mkdir()
    assert problems(path) == [
        "jobs.yaml:6:10: jobs.refresh-summary.sql: template 'sql/refresh_summary.sql' is"
        " outside queries/; keep templates under queries/",
    ]


@pytest.mark.parametrize("key", ["migrations", "templates"])
def test_a_project_folder_that_does_not_exist_is_refused(tmp_path: Path, key: str) -> None:
    path = project(tmp_path, MINIMAL.replace("version: 1\n", f"version: 1\n{key}: db/missing\n"))
    rest = ["jobs.yaml:6:10: jobs.refresh-summary.sql: template 'sql/refresh_summary.sql' is"
            " outside db/missing/; keep templates under db/missing/"] if key == "templates" else []  # fmt: skip
    assert problems(path) == [
        f"jobs.yaml:2:{len(key) + 3}: {key}: folder 'db/missing' does not exist; create"
        " db/missing/ or fix the path",
        *rest,
    ]


@pytest.mark.parametrize("key", ["migrations", "templates"])
def test_a_project_folder_outside_the_project_is_refused(tmp_path: Path, key: str) -> None:
    path = project(tmp_path, MINIMAL.replace("version: 1\n", f"version: 1\n{key}: ../elsewhere\n"))
    (tmp_path / "elsewhere").mkdir()
    found = problems(path)
    assert found[0] == (
        f"jobs.yaml:2:{len(key) + 3}: {key}: '../elsewhere' is outside the project folder;"
        " name a folder inside the folder of the manifest"
    )
