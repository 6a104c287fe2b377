"""Each job's meaning beyond the schema: unique message types, its cron and zone, its
template (inside the templates folder, parses, renders with its params) or its action,
its catch-up, its window, and the URLs it notifies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.core.errors import CronError, TemplateError
from engine.core.model import DEFAULT_SETTLE_SECONDS, DEFAULT_TEMPLATES
from engine.manifest import actionchecks, notifychecks, schema, since, windows, yamlmarks
from engine.manifest.checker import Checker
from engine.schedule import cron, zones
from engine.schedule.slots import longest_gap
from engine.sql import sqltemplates

_SAMPLE_SLOT = datetime(2026, 1, 1, tzinfo=UTC)
_WINDOW_BOUNDS = ("window_start", "window_end")


def check_jobs(c: Checker, data: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Check every job; returns the runtime variables each job's template reads, by job
    name (a job whose template is missing or broken reads nothing)."""
    types: dict[str, str] = {}
    reads: dict[str, frozenset[str]] = {}
    root = data.get("templates", DEFAULT_TEMPLATES)
    for name, job in c.jobs(data):
        base = ("jobs", name)
        _check_type(c, base, name, job, types)
        _check_cron(c, base, job)
        _check_zone(c, base, job)
        has_sql, has_action = "sql" in job, "action" in job
        if has_sql == has_action:
            c.error(
                base,
                "a job needs exactly one of 'sql' or 'action'",
                "keep 'sql: sql/FILE.sql' for a SQL job or 'action:' for a built-in or"
                " python action",
            )
        template = job.get("sql")
        tpath: yamlmarks.Path = (*base, "sql")
        action = job.get("action")
        if isinstance(action, dict):
            template, tpath = action.get("sql"), (*base, "action", "sql")
            actionchecks.check_action(c, (*base, "action"), action, data)
        source = None
        if isinstance(template, str) and template.endswith(".sql") and isinstance(root, str):
            source = _check_template(c, tpath, template, job, root)
        reads[name] = sqltemplates.variables_read(source) if source is not None else frozenset()
        _check_catch_up(c, base, job)
        _check_window(c, base, job, template, tpath, reads[name])
        retry = job.get("retry")
        if isinstance(retry, dict):
            lo, hi = retry.get("initial_delay_seconds"), retry.get("max_delay_seconds")
            if isinstance(lo, int) and isinstance(hi, int) and hi < lo <= 43200:
                c.error(
                    (*base, "retry", "max_delay_seconds"),
                    f"max delay {hi} is below the initial delay {lo}",
                    f"raise max_delay_seconds to at least {lo}",
                )
        notifychecks.check_notify(c, (*base, "notify"), job.get("notify"))
        notifychecks.check_healthcheck(c, (*base, "healthcheck"), job.get("healthcheck"))
    return reads


def _check_type(
    c: Checker, base: yamlmarks.Path, name: str, job: Mapping[str, Any], types: dict[str, str]
) -> None:
    """Message types are unique; a job without ``type:`` is sent under its name."""
    t = job.get("type", name)
    if not isinstance(t, str):
        return
    if "type" not in job and re.fullmatch(_type_pattern(), name) is None:
        c.error(
            base,
            f"job name '{name}' cannot be its message type (the default)",
            "add 'type:' with lower-case words joined by '.' or '-', or rename the job",
            key=True,
        )
    elif t in types:
        c.error(
            (*base, "type") if "type" in job else base,
            f"message type '{t}' is already used by job '{types[t]}'",
            "give every job its own message type",
            key="type" not in job,
        )
    else:
        types[t] = name


def _type_pattern() -> str:
    pattern: str = schema.schema()["$defs"]["job"]["properties"]["type"]["pattern"]
    return pattern


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
    if not isinstance(catch_up, dict):
        return
    if "since" in catch_up:
        problem = since.problem(catch_up["since"])
        if problem is not None:
            c.error((*base, "catch_up", "since"), *problem)
    if not isinstance(expr, str):
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
    c: Checker,
    base: yamlmarks.Path,
    job: Mapping[str, Any],
    rel: object,
    tpath: yamlmarks.Path,
    reads: frozenset[str],
) -> None:
    """A template that reads a window bound needs a window. A window must end by its
    slot, or the run reads data that does not exist yet and records success.
    ``allow_open_window`` admits one only for a template that never reads ``window_end``."""
    window = job.get("window")
    if "window" not in job:
        bounds = [v for v in _WINDOW_BOUNDS if v in reads]
        if bounds:
            c.error(
                tpath,
                f"template '{rel}' reads {' and '.join(bounds)} but the job has no window",
                "add window: {period: hour, offset: -1} for the hour before the slot"
                " (or minute, day, week, month)",
            )
        return
    if not isinstance(window, dict):
        return
    problem = windows.ends_after_slot(window.get("period"), window.get("offset", 0))
    if problem is None:
        return
    if job.get("allow_open_window") is not True:
        at = (*base, "window", "offset") if "offset" in window else (*base, "window")
        c.error(at, *problem)
    elif "window_end" in reads:
        c.error(
            (*base, "allow_open_window"),
            f"allow_open_window is set but template '{rel}' reads window_end, which lies"
            " after the slot",
            "read slot or window_start instead, or use offset -1 and drop allow_open_window",
        )


def _check_template(
    c: Checker, path: yamlmarks.Path, rel: str, job: Mapping[str, Any], root: str
) -> str | None:
    """Check a template; returns its source when it parses."""
    if not c.inside(rel, root):
        folder = root.rstrip("/") + "/"
        c.error(path, f"template '{rel}' is outside {folder}", f"keep templates under {folder}")
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
