"""Each job's meaning beyond the schema: unique message types, its cron and zone, its
template (inside sql/, parses, renders with its params), its catch-up and window."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.core.errors import CronError, TemplateError
from engine.core.window import DEFAULT_SETTLE_SECONDS
from engine.manifest import windows, yamlmarks
from engine.manifest.checker import Checker
from engine.schedule import cron, zones
from engine.schedule.slots import longest_gap
from engine.sql import sqltemplates

ACTIONS = frozenset({"warmup-reset"})
_SAMPLE_SLOT = datetime(2026, 1, 1, tzinfo=UTC)


def check_jobs(c: Checker, data: Mapping[str, Any]) -> None:
    types: dict[str, str] = {}
    for name, job in c.jobs(data):
        base = ("jobs", name)
        t = job.get("type")
        if isinstance(t, str):
            if t in types:
                c.error(
                    (*base, "type"),
                    f"message type '{t}' is already used by job '{types[t]}'",
                    "give every job its own message type",
                )
            else:
                types[t] = name
        _check_cron(c, base, job)
        _check_zone(c, base, job)
        has_sql, has_action = "sql" in job, "action" in job
        if has_sql == has_action:
            c.error(
                base,
                "a job needs exactly one of 'sql' or 'action'",
                "keep 'sql: sql/FILE.sql' for a SQL job or 'action:' for a built-in action",
            )
        template = job.get("sql")
        tpath: yamlmarks.Path = (*base, "sql")
        action = job.get("action")
        if isinstance(action, dict):
            template, tpath = action.get("sql"), (*base, "action", "sql")
            if action.get("name") == "warmup-reset" and not isinstance(data.get("r2_bucket"), dict):
                c.error(
                    (*base, "action", "name"),
                    "the warmup-reset action needs an R2 bucket",
                    "add an 'r2_bucket:' section",
                )
        source = None
        if isinstance(template, str) and template.startswith("sql/"):
            source = _check_template(c, tpath, template, job)
        _check_catch_up(c, base, job)
        _check_window(c, base, job, template, source)
        retry = job.get("retry")
        if isinstance(retry, dict):
            lo, hi = retry.get("initial_delay_seconds"), retry.get("max_delay_seconds")
            if isinstance(lo, int) and isinstance(hi, int) and hi < lo <= 43200:
                c.error(
                    (*base, "retry", "max_delay_seconds"),
                    f"max delay {hi} is below the initial delay {lo}",
                    f"raise max_delay_seconds to at least {lo}",
                )


def _check_cron(c: Checker, base: yamlmarks.Path, job: Mapping[str, Any]) -> None:
    expr = job.get("cron")
    if not isinstance(expr, str):
        return
    both = job.get("allow_both_day_fields") is True
    try:
        cron.parse(expr, allow_both_day_fields=both)
    except CronError as exc:
        c.error((*base, "cron"), exc.message, exc.hint or "see the cron rules in the README")


def _check_zone(c: Checker, base: yamlmarks.Path, job: Mapping[str, Any]) -> None:
    name = job.get("timezone")
    if isinstance(name, str):
        problem = zones.zone_problem(name)
        if problem is not None:
            c.error((*base, "timezone"), *problem)
    elif "dst" in job:
        c.error(
            (*base, "dst"),
            "dst rules apply only to a job with a timezone",
            "add timezone: <IANA name> or remove dst",
        )


def _check_catch_up(c: Checker, base: yamlmarks.Path, job: Mapping[str, Any]) -> None:
    """A catch-up window shorter than the schedule's period could miss every slot."""
    catch_up, expr = job.get("catch_up"), job.get("cron")
    if not isinstance(catch_up, dict) or not isinstance(expr, str):
        return
    within = catch_up.get("within_seconds")
    if not isinstance(within, int) or catch_up.get("policy", "all") == "none":
        return
    try:
        schedule = cron.parse(expr, allow_both_day_fields=job.get("allow_both_day_fields") is True)
    except CronError:
        return
    gap = longest_gap(schedule)
    period = int(gap.total_seconds()) if gap else 0
    if within < period:
        c.error(
            (*base, "catch_up", "within_seconds"),
            f"{within} s does not cover one period of the job's schedule"
            f" ({period} s between slots)",
            f"raise within_seconds to at least {period} or set policy: none",
        )


def _check_window(
    c: Checker, base: yamlmarks.Path, job: Mapping[str, Any], rel: object, source: str | None
) -> None:
    """A window must end by its slot, or the run reads data that does not exist yet
    and records success. ``allow_open_window`` admits one only for a template that
    never reads ``window_end``."""
    window = job.get("window")
    if not isinstance(window, dict):
        return
    problem = windows.ends_after_slot(window.get("period"), window.get("offset", 0))
    if problem is None:
        return
    if job.get("allow_open_window") is not True:
        at = (*base, "window", "offset") if "offset" in window else (*base, "window")
        c.error(at, *problem)
    elif source is not None and sqltemplates.reads_variable(source, "window_end"):
        c.error(
            (*base, "allow_open_window"),
            f"allow_open_window is set but template '{rel}' reads window_end, which lies"
            " after the slot",
            "read slot or window_start instead, or use offset -1 and drop allow_open_window",
        )


def _check_template(
    c: Checker, path: yamlmarks.Path, rel: str, job: Mapping[str, Any]
) -> str | None:
    """Check a template; returns its source when it parses."""
    if not c.inside(rel, "sql"):
        c.error(path, f"template '{rel}' is outside sql/", "keep templates under sql/")
        return None
    try:
        source = c.read_text(rel)
    except OSError:
        c.error(path, f"template '{rel}' does not exist", f"create {rel} or fix the path")
        return None
    if source is None:  # not UTF-8, reported in the template
        return None
    problems = sqltemplates.check_source(source)
    for problem, fix in problems:
        c.error(path, f"template '{rel}' {problem}", fix)
    if problems:
        return None
    params = job.get("params") if isinstance(job.get("params"), dict) else {}
    context = {
        "slot": _SAMPLE_SLOT,
        "window_start": _SAMPLE_SLOT,
        "window_end": _SAMPLE_SLOT,
        "params": params,
        "job": {"name": "", "type": ""},
        "settle_seconds": DEFAULT_SETTLE_SECONDS,
        "rerun": False,
    }
    try:
        sqltemplates.render_source(source, context, name=rel)
    except TemplateError as exc:
        c.error(path, f"template {exc.message}", exc.hint or "define it under the job's 'params:'")
    return source
