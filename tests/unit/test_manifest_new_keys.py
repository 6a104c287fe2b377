"""The keys other parts build on: catch_up.since (issue 17), notify and healthcheck
(issue 21), python actions (issue 19). Each good form loads into the model; each bad
one is one located error with its fix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.core.errors import ManifestErrors
from engine.core.model import ALL_EVENTS, Action, Event, Manifest, Notify
from engine.manifest.loader import load

HEAD = """\
version: 1
jobs:
  nightly:
    cron: "30 2 * * *"
    sql: sql/nightly.sql
"""
TEMPLATE = "DELETE FROM sessions WHERE expires_at < {{ slot }};\n"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "sql").mkdir(exist_ok=True)
    (tmp_path / "sql" / "nightly.sql").write_text(TEMPLATE)
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return path


def loaded(tmp_path: Path, text: str) -> Manifest:
    return load(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ManifestErrors) as info:
        load(path)
    return [str(e).replace(f"{path}:", "jobs.yaml:") for e in info.value.errors]


# catch_up.since ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zone", "instant"),
    [
        ("2026-05-01", None, datetime(2026, 5, 1, tzinfo=UTC)),
        ('"2026-05-01"', None, datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01", "Europe/Paris", datetime(2026, 4, 30, 22, tzinfo=UTC)),
        ("2026-03-08", "America/New_York", datetime(2026, 3, 8, 5, tzinfo=UTC)),
        ("2026-05-01T06:30:00Z", None, datetime(2026, 5, 1, 6, 30, tzinfo=UTC)),
        ('"2026-05-01T06:30Z"', "Europe/Paris", datetime(2026, 5, 1, 6, 30, tzinfo=UTC)),
        ('"2026-05-01T08:30:00+02:00"', None, datetime(2026, 5, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_catch_up_since_is_an_aware_utc_instant(
    tmp_path: Path, value: str, zone: str | None, instant: datetime
) -> None:
    zoned = f"    timezone: {zone}\n" if zone else ""
    m = loaded(tmp_path, HEAD + zoned + f"    catch_up: {{policy: all, since: {value}}}\n")
    since = m.jobs[0].catch_up.since
    assert since == instant
    assert since is not None and since.tzinfo is UTC


def test_catch_up_since_is_none_by_default(tmp_path: Path) -> None:
    assert loaded(tmp_path, HEAD).jobs[0].catch_up.since is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            '"May 1st"',
            "'May 1st' is not a date or a time; write a date as YYYY-MM-DD or a time as"
            " 2026-05-01T00:00:00Z",
        ),
        (
            '"2026-02-30"',
            "'2026-02-30' is not a date or a time; write a date as YYYY-MM-DD or a time as"
            " 2026-05-01T00:00:00Z",
        ),
        (
            "20260501",
            "20260501 is not a date or a time; write a date as YYYY-MM-DD or a time as"
            " 2026-05-01T00:00:00Z",
        ),
        (
            "2026-05-01 06:30:00",
            '"2026-05-01 06:30:00" has no UTC offset; add Z for UTC (2026-05-01T00:00:00Z),'
            " or write a date alone",
        ),
        (
            '"2026-05-01T06:30"',
            "'2026-05-01T06:30' has no UTC offset; add Z for UTC (2026-05-01T00:00:00Z), or"
            " write a date alone",
        ),
    ],
)
def test_a_bad_catch_up_since_is_located_with_its_fix(
    tmp_path: Path, value: str, message: str
) -> None:
    text = HEAD + f"    catch_up:\n      since: {value}\n"
    assert problems(tmp_path, text) == [f"jobs.yaml:7:14: jobs.nightly.catch_up.since: {message}"]


# notify and healthcheck ----------------------------------------------------------------

NOTIFY = """\
notify:
  - url: slack://${SLACK_TOKEN_A}/${SLACK_TOKEN_B}/C123
  - url: json://localhost:8000/hooks?token=${HOOK_TOKEN}
    events: [dead_letter, recovery]
"""


def test_top_level_notify_reaches_every_job_with_all_events_by_default(tmp_path: Path) -> None:
    m = loaded(tmp_path, NOTIFY + HEAD)
    assert m.notify == (
        Notify(url="slack://${SLACK_TOKEN_A}/${SLACK_TOKEN_B}/C123", events=ALL_EVENTS),
        Notify(
            url="json://localhost:8000/hooks?token=${HOOK_TOKEN}",
            events=frozenset({Event.DEAD_LETTER, Event.RECOVERY}),
        ),
    )
    assert {"dead_letter", "missing", "recovery", "near_timeout"} == ALL_EVENTS
    job = m.jobs[0]
    assert job.notify is None
    assert m.notify_for(job) == m.notify


def test_a_jobs_notify_replaces_the_top_level_list_and_an_empty_list_silences_it(
    tmp_path: Path,
) -> None:
    text = (
        NOTIFY
        + HEAD
        + (
            "    notify: [{url: 'mailto://ops@example.com', events: [missing]}]\n"
            '  quiet:\n    cron: "0 3 * * *"\n    sql: sql/nightly.sql\n    notify: []\n'
        )
    )
    m = loaded(tmp_path, text)
    nightly, quiet = m.jobs
    assert m.notify_for(nightly) == (
        Notify(url="mailto://ops@example.com", events=frozenset({Event.MISSING})),
    )
    assert quiet.notify == () and m.notify_for(quiet) == ()


@pytest.mark.parametrize(
    ("url", "col", "message"),
    [
        (
            "hooks.example.com/x",
            10,
            "'hooks.example.com/x' is not a URL of the form scheme://...; write the scheme"
            " first, e.g. json://host/path; put secrets in ${NAME}",
        ),
        (
            "${WEBHOOK_URL}",
            10,
            "'${WEBHOOK_URL}' is not a URL of the form scheme://...; write the scheme first,"
            " e.g. json://host/path; put secrets in ${NAME}",
        ),
        (
            "slack://${TOKEN",
            10,
            "'${TOKEN' is not a reference to an environment variable; write ${NAME}, NAME"
            " being letters, digits and '_' (not starting with a digit)",
        ),
        (
            "slack://${1TOKEN}/x",
            10,
            "'${1TOKEN}' is not a reference to an environment variable; write ${NAME}, NAME"
            " being letters, digits and '_' (not starting with a digit)",
        ),
        (
            "slack://${}/x",
            10,
            "'${}' is not a reference to an environment variable; write ${NAME}, NAME"
            " being letters, digits and '_' (not starting with a digit)",
        ),
    ],
)
def test_a_bad_notify_url_is_located_with_its_fix(
    tmp_path: Path, url: str, col: int, message: str
) -> None:
    text = f'notify:\n  - url: "{url}"\n' + HEAD
    assert problems(tmp_path, text) == [f"jobs.yaml:2:{col}: notify.0.url: {message}"]


def test_a_bad_url_in_a_jobs_notify_is_located_in_the_job(tmp_path: Path) -> None:
    text = HEAD + "    notify:\n      - {url: 'json://x/${A-B}'}\n"
    assert problems(tmp_path, text) == [
        "jobs.yaml:7:15: jobs.nightly.notify.0.url: '${A-B}' is not a reference to an"
        " environment variable; write ${NAME}, NAME being letters, digits and '_' (not"
        " starting with a digit)",
    ]


def test_an_unknown_notify_event_is_refused_with_the_closest_one(tmp_path: Path) -> None:
    text = "notify:\n  - {url: 'json://x', events: [dead_letters]}\n" + HEAD
    assert problems(tmp_path, text) == [
        "jobs.yaml:2:32: notify.0.events.0: 'dead_letters' is not one of dead_letter, missing,"
        " recovery, near_timeout; did you mean 'dead_letter'?",
    ]


def test_a_notify_target_without_events_is_refused(tmp_path: Path) -> None:
    text = "notify:\n  - {url: 'json://x', events: []}\n" + HEAD
    assert problems(tmp_path, text) == [
        "jobs.yaml:2:31: notify.0.events: [] should be non-empty; list some of dead_letter,"
        " missing, recovery, near_timeout, each once (or leave events out for all four)",
    ]


def test_a_notify_target_needs_a_url(tmp_path: Path) -> None:
    text = "notify:\n  - {events: [missing]}\n" + HEAD
    assert problems(tmp_path, text) == [
        "jobs.yaml:2:5: notify.0: missing required key 'url'; add 'url:'",
    ]


def test_a_healthcheck_url_may_name_its_secret_in_the_environment(tmp_path: Path) -> None:
    m = loaded(tmp_path, HEAD + "    healthcheck: https://hc-ping.com/${HC_UUID}\n")
    assert m.jobs[0].healthcheck == "https://hc-ping.com/${HC_UUID}"


def test_a_healthcheck_is_pinged_over_http_only(tmp_path: Path) -> None:
    text = HEAD + "    healthcheck: ftp://hc.example.com/x\n"
    assert problems(tmp_path, text) == [
        "jobs.yaml:6:18: jobs.nightly.healthcheck: scheme 'ftp' is not https or http; use a"
        " URL such as https://host/path",
    ]


# python actions -------------------------------------------------------------------------

PYTHON_JOB = """\
version: 1
jobs:
  sync-crm:
    cron: "*/10 * * * *"
    action: {python: "jobs.crm:sync"}
"""


def test_a_python_action_needs_no_sql_and_no_window(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "crm.py").write_text("async def sync(run):\n    return 0\n")
    m = loaded(tmp_path, PYTHON_JOB)
    job = m.jobs[0]
    assert job.action == Action(python="jobs.crm:sync")
    assert (job.template, job.window, job.reads, job.type) == (None, None, frozenset(), "sync-crm")


def test_a_python_action_may_name_a_package(tmp_path: Path) -> None:
    (tmp_path / "jobs" / "crm").mkdir(parents=True)
    (tmp_path / "jobs" / "crm" / "__init__.py").write_text("async def sync(run): ...\n")
    assert loaded(tmp_path, PYTHON_JOB).jobs[0].action == Action(python="jobs.crm:sync")


def test_a_python_action_whose_module_is_missing_is_located(tmp_path: Path) -> None:
    assert problems(tmp_path, PYTHON_JOB) == [
        "jobs.yaml:5:22: jobs.sync-crm.action.python: module 'jobs.crm' is not in the"
        " project: neither jobs/crm.py nor jobs/crm/__init__.py exists beside the manifest;"
        " create jobs/crm.py with 'async def sync(run)', or fix the name",
    ]


@pytest.mark.parametrize("target", ["jobs.crm", "jobs/crm:sync", "jobs.crm:sync.now", ":sync"])
def test_a_python_action_that_is_not_module_colon_function_is_refused(
    tmp_path: Path, target: str
) -> None:
    text = PYTHON_JOB.replace('"jobs.crm:sync"', f'"{target}"')
    assert problems(tmp_path, text) == [
        f"jobs.yaml:5:22: jobs.sync-crm.action.python: '{target}' is not a valid value; write"
        " module.path:function, e.g. jobs.reports:send_daily",
    ]


def test_a_python_keyword_is_no_module_name(tmp_path: Path) -> None:
    text = PYTHON_JOB.replace('"jobs.crm:sync"', '"jobs.class:sync"')
    assert problems(tmp_path, text) == [
        "jobs.yaml:5:22: jobs.sync-crm.action.python: 'class' is a Python keyword, not a"
        " module or function name; rename the module or function",
    ]


def test_a_python_action_outside_the_project_is_not_found(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "crm.py").write_text("async def sync(run): ...\n")
    (project / "jobs").symlink_to(tmp_path / "jobs")
    assert problems(project, PYTHON_JOB)[0].startswith(
        "jobs.yaml:5:22: jobs.sync-crm.action.python: module 'jobs.crm' is not in the project"
    )


def test_a_python_action_takes_no_sql(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "crm.py").write_text("async def sync(run): ...\n")
    text = PYTHON_JOB.replace(
        'action: {python: "jobs.crm:sync"}',
        'action: {python: "jobs.crm:sync", sql: sql/nightly.sql}',
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:5:44: jobs.sync-crm.action.sql: a python action takes no 'sql'; remove"
        " sql: (the function runs its own statements on the connection it gets)",
    ]


def test_an_action_is_a_builtin_or_python_not_both(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "crm.py").write_text("async def sync(run): ...\n")
    text = "r2_bucket: {binding: R2, bucket_name: warm-up}\n" + PYTHON_JOB.replace(
        'action: {python: "jobs.crm:sync"}',
        'action: {python: "jobs.crm:sync", name: warmup-reset}',
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:6:13: jobs.sync-crm.action: an action is either a built-in 'name' or"
        " 'python', not both; keep one",
    ]


def test_an_empty_action_says_what_it_needs(tmp_path: Path) -> None:
    text = PYTHON_JOB.replace('action: {python: "jobs.crm:sync"}', "action: {}")
    assert problems(tmp_path, text) == [
        "jobs.yaml:5:13: jobs.sync-crm.action: an action needs 'name' (a built-in action) or"
        " 'python' (an async function); add python: module.path:function, or name:"
        " warmup-reset with its sql:",
    ]


def test_a_builtin_action_needs_its_sql(tmp_path: Path) -> None:
    text = "r2_bucket: {binding: R2, bucket_name: warm-up}\n" + PYTHON_JOB.replace(
        'action: {python: "jobs.crm:sync"}', "action: {name: warmup-reset}"
    )
    assert problems(tmp_path, text) == [
        "jobs.yaml:6:13: jobs.sync-crm.action: the built-in action 'warmup-reset' needs"
        " 'sql', the query whose rows it takes; add sql: sql/FILE.sql",
    ]
