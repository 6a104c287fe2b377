"""Load jobs.yaml: YAML with line marks, then the schema, then meaning, then the model.

Every problem is collected and raised at once as ManifestErrors, sorted by position,
each rendered ``jobs.yaml:LINE:COL: path: problem; fix``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.describe import type_name
from engine.core.errors import CronError, Location, ManifestError, ManifestErrors, TemplateError
from engine.core.model import (
    DEFAULT_SETTLE_SECONDS,
    DEFAULT_TIMEOUT,
    DEFAULT_VISIBILITY_TIMEOUT,
    Manifest,
    Plan,
)
from engine.manifest import schema, windows, yamlmarks
from engine.manifest.build import build
from engine.schedule import cron, fold, zones
from engine.schedule.slots import longest_gap
from engine.sql import sqltemplates

#: wrangler 4.86.0 bundles a workerd dated 2026-05-03; later dates fail to deploy locally.
MAX_COMPATIBILITY_DATE = "2026-05-03"
ACTIONS = frozenset({"warmup-reset"})
_SAMPLE_SLOT = datetime(2026, 1, 1, tzinfo=UTC)
#: A pull consumer's lease must outlast a run's deadline by this much: the client-side
#: backstop after a statement timeout, the failure or dead-letter write, and the ack.
LEASE_MARGIN_SECONDS = 60


def load(path: str | os.PathLike[str]) -> Manifest:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestErrors(
            [
                ManifestError(
                    f"cannot read manifest: {exc.strerror}",
                    location=Location(str(p)),
                    hint="run from the directory holding jobs.yaml or pass its path",
                )
            ]
        ) from exc
    return load_text(text, filename=str(path), root=p.parent)


def load_text(text: str, *, filename: str = "jobs.yaml", root: Path | None = None) -> Manifest:
    """Parse and validate manifest text; templates resolve against ``root``."""
    checker = _Checker(filename, root or Path("."))
    try:
        marked = yamlmarks.load(text)
    except yamlmarks.YamlSyntaxError as exc:
        raise ManifestErrors(
            [
                ManifestError(
                    f"YAML syntax error: {exc.problem}",
                    location=Location(filename, exc.line, exc.col),
                    hint="fix the YAML at this position",
                )
            ]
        ) from None
    return checker.check(marked)


def _dotted(path: yamlmarks.Path) -> str:
    return ".".join(str(p) for p in path)


class _Checker:
    def __init__(self, filename: str, root: Path) -> None:
        self.filename = filename
        self.root = root
        self.errors: list[ManifestError] = []
        self.marked = yamlmarks.Marked(data=None)

    def error(
        self,
        path: yamlmarks.Path,
        problem: str,
        hint: str,
        *,
        key: bool = False,
        at: tuple[int, int] | None = None,
    ) -> None:
        line, col = at or self.marked.where(path, key=key)
        self.errors.append(
            ManifestError(
                problem,
                hint=hint,
                path=_dotted(path) or None,
                location=Location(self.filename, line, col),
            )
        )

    def check(self, marked: yamlmarks.Marked) -> Manifest:
        self.marked = marked
        data = marked.data
        for path, first, again in marked.duplicates:
            self.error(
                path,
                f"duplicate key '{path[-1]}' (first defined at line {first[0]})",
                "keep one: names must be unique",
                at=again,
            )
        if not isinstance(data, dict):
            self.error(
                (),
                f"the manifest must be a mapping, got {type_name(data, dialect='yaml')}",
                "start from the example jobs.yaml in the README",
            )
            raise ManifestErrors(self.errors)
        for v in schema.violations(data):
            self.error(v.path, v.problem, v.hint, key=v.key)
        schema_ok = not self.errors
        self._check_jobs(data)
        self._check_top(data)
        if self.errors or not schema_ok:
            raise ManifestErrors(self.errors)
        manifest = build(data, self.filename)
        self.check_budget(manifest)
        return manifest

    # -- meaning beyond the schema -------------------------------------------------

    def _jobs(self, data: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        jobs = data.get("jobs")
        if isinstance(jobs, dict):
            for name, job in jobs.items():
                if isinstance(job, dict):
                    yield str(name), job

    def _check_jobs(self, data: Mapping[str, Any]) -> None:
        types: dict[str, str] = {}
        for name, job in self._jobs(data):
            base = ("jobs", name)
            t = job.get("type")
            if isinstance(t, str):
                if t in types:
                    self.error(
                        (*base, "type"),
                        f"message type '{t}' is already used by job '{types[t]}'",
                        "give every job its own message type",
                    )
                else:
                    types[t] = name
            self._check_cron(base, job)
            self._check_zone(base, job)
            has_sql, has_action = "sql" in job, "action" in job
            if has_sql == has_action:
                self.error(
                    base,
                    "a job needs exactly one of 'sql' or 'action'",
                    "keep 'sql: sql/FILE.sql' for a SQL job or 'action:' for a built-in action",
                )
            template = job.get("sql")
            tpath: yamlmarks.Path = (*base, "sql")
            action = job.get("action")
            if isinstance(action, dict):
                template, tpath = action.get("sql"), (*base, "action", "sql")
                if action.get("name") == "warmup-reset" and not isinstance(
                    data.get("r2_bucket"), dict
                ):
                    self.error(
                        (*base, "action", "name"),
                        "the warmup-reset action needs an R2 bucket",
                        "add an 'r2_bucket:' section",
                    )
            source = None
            if isinstance(template, str) and template.startswith("sql/"):
                source = self._check_template(tpath, template, job)
            self._check_catch_up(base, job)
            self._check_window(base, job, template, source)
            retry = job.get("retry")
            if isinstance(retry, dict):
                lo, hi = retry.get("initial_delay_seconds"), retry.get("max_delay_seconds")
                if isinstance(lo, int) and isinstance(hi, int) and hi < lo <= 43200:
                    self.error(
                        (*base, "retry", "max_delay_seconds"),
                        f"max delay {hi} is below the initial delay {lo}",
                        f"raise max_delay_seconds to at least {lo}",
                    )

    def _check_cron(self, base: yamlmarks.Path, job: Mapping[str, Any]) -> None:
        expr = job.get("cron")
        if not isinstance(expr, str):
            return
        both = job.get("allow_both_day_fields") is True
        try:
            cron.parse(expr, allow_both_day_fields=both)
        except CronError as exc:
            self.error((*base, "cron"), exc.message, exc.hint or "see the cron rules in the README")

    def _check_zone(self, base: yamlmarks.Path, job: Mapping[str, Any]) -> None:
        name = job.get("timezone")
        if isinstance(name, str):
            problem = zones.zone_problem(name)
            if problem is not None:
                self.error((*base, "timezone"), *problem)
        elif "dst" in job:
            self.error(
                (*base, "dst"),
                "dst rules apply only to a job with a timezone",
                "add timezone: <IANA name> or remove dst",
            )

    def _inside(self, rel: str, folder: str = "") -> bool:
        """Does ``rel`` (relative to the manifest), resolved with its symlinks and ``..``,
        stay below ``folder`` of the project?"""
        return (self.root / folder).resolve() in (self.root / rel).resolve().parents

    def _check_catch_up(self, base: yamlmarks.Path, job: Mapping[str, Any]) -> None:
        """A catch-up window shorter than the schedule's period could miss every slot."""
        catch_up, expr = job.get("catch_up"), job.get("cron")
        if not isinstance(catch_up, dict) or not isinstance(expr, str):
            return
        within = catch_up.get("within_seconds")
        if not isinstance(within, int) or catch_up.get("policy", "all") == "none":
            return
        try:
            schedule = cron.parse(
                expr, allow_both_day_fields=job.get("allow_both_day_fields") is True
            )
        except CronError:
            return
        gap = longest_gap(schedule)
        period = int(gap.total_seconds()) if gap else 0
        if within < period:
            self.error(
                (*base, "catch_up", "within_seconds"),
                f"{within} s does not cover one period of the job's schedule"
                f" ({period} s between slots)",
                f"raise within_seconds to at least {period} or set policy: none",
            )

    def _check_window(
        self, base: yamlmarks.Path, job: Mapping[str, Any], rel: object, source: str | None
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
            self.error(at, *problem)
        elif source is not None and sqltemplates.reads_variable(source, "window_end"):
            self.error(
                (*base, "allow_open_window"),
                f"allow_open_window is set but template '{rel}' reads window_end, which lies"
                " after the slot",
                "read slot or window_start instead, or use offset -1 and drop allow_open_window",
            )

    def _check_template(self, path: yamlmarks.Path, rel: str, job: Mapping[str, Any]) -> str | None:
        """Check a template; returns its source when it parses."""
        file = (self.root / rel).resolve()
        if not self._inside(rel, "sql"):
            self.error(path, f"template '{rel}' is outside sql/", "keep templates under sql/")
            return None
        try:
            source = file.read_text(encoding="utf-8")
        except OSError:
            self.error(path, f"template '{rel}' does not exist", f"create {rel} or fix the path")
            return None
        problems = sqltemplates.check_source(source)
        for problem, fix in problems:
            self.error(path, f"template '{rel}' {problem}", fix)
        if problems:
            return None
        params = job.get("params") if isinstance(job.get("params"), dict) else {}
        context = {
            "slot": _SAMPLE_SLOT,
            "window_start": _SAMPLE_SLOT,
            "window_end": _SAMPLE_SLOT,
            "settle_seconds": DEFAULT_SETTLE_SECONDS,
            "rerun": False,
            "params": params,
            "job": {"name": "", "type": ""},
        }
        try:
            sqltemplates.render_source(source, context, name=rel)
        except TemplateError as exc:
            self.error(path, f"template {exc.message}", "define it under the job's 'params:'")
        return source

    def _check_top(self, data: Mapping[str, Any]) -> None:
        plan, budget = data.get("plan"), data.get("trigger_budget")
        limit = Plan(plan).trigger_limit if plan in ("free", "paid") else None
        if limit is not None and isinstance(budget, int) and budget > limit:
            self.error(
                ("trigger_budget",),
                f"{budget} exceeds the {plan} plan's {limit} cron triggers",
                f"set trigger_budget to at most {limit}",
            )
        self._check_environments(data)
        worker = data.get("worker")
        if isinstance(worker, dict):
            date = worker.get("compatibility_date")
            if isinstance(date, str) and date > MAX_COMPATIBILITY_DATE:
                self.error(
                    ("worker", "compatibility_date"),
                    f"'{date}' is later than the pinned workerd runtime ({MAX_COMPATIBILITY_DATE})",
                    f"use {MAX_COMPATIBILITY_DATE} or earlier",
                )
            elif isinstance(date, str):
                try:
                    datetime.strptime(date, "%Y-%m-%d")
                except ValueError:
                    self.error(
                        ("worker", "compatibility_date"),
                        f"'{date}' is not a calendar date",
                        "write a real date as YYYY-MM-DD",
                    )
        consumer = (
            (data.get("queue") or {}).get("consumer")
            if isinstance(data.get("queue"), dict)
            else None
        )
        self._check_leases(data, consumer if isinstance(consumer, dict) else {})
        if isinstance(consumer, dict) and consumer.get("type") == "worker":
            script = consumer.get("script")
            if not isinstance(script, str):
                self.error(
                    ("queue", "consumer"),
                    "a worker consumer needs a 'script'",
                    "name the module that exports the queue() handler, or use type: http_pull",
                )
            elif not self._inside(script):
                self.error(
                    ("queue", "consumer", "script"),
                    f"script '{script}' is outside the project folder",
                    "keep the consumer module in the folder of the manifest or below it",
                )
            elif not (self.root / script).is_file():
                self.error(
                    ("queue", "consumer", "script"),
                    f"script '{script}' does not exist",
                    f"create {script} or fix the path",
                )

    def _check_environments(self, data: Mapping[str, Any]) -> None:
        """Each environment deploys a Worker that fires the crons: two sending to one queue
        would send every slot twice."""
        envs, queue = data.get("environments"), data.get("queue")
        if not isinstance(envs, dict) or not isinstance(queue, dict):
            return
        seen: dict[str, str] = {}
        for name in sorted(envs):
            env = envs[name] if isinstance(envs[name], dict) else {}
            q = env.get("queue", queue.get("name"))
            if not isinstance(q, str):
                continue
            if q in seen:
                self.error(
                    ("environments", name),
                    f"environments '{seen[q]}' and '{name}' both send to queue '{q}', "
                    "so every slot would be sent twice",
                    f"give environments.{name} its own 'queue:'",
                    key=True,
                )
            else:
                seen[q] = name

    def check_budget(self, manifest: Manifest) -> None:
        """More distinct schedules than triggers: fold them, within the waste limit."""
        jobs = [j for j in manifest.jobs if not j.paused]
        result = fold.fold(jobs, manifest.trigger_budget)
        if not result.folded:
            return
        wasted = sum(w for _, w in fold.stats(result, jobs).values())
        limit = manifest.fold_max_wasted_per_day
        if wasted <= limit:
            return
        distinct = result.schedules
        merges = "; ".join(
            f"{', '.join(t.types)} on '{t.cron}'" for t in result.triggers if len(t.types) > 1
        )
        self.error(
            ("jobs",),
            f"{distinct} distinct schedules exceed the budget of {manifest.trigger_budget} "
            f"triggers, and the best folding wastes {wasted:.1f} invocations a day "
            f"(limit {limit}): {merges}",
            f"give those jobs one schedule, raise trigger_budget to {distinct}, "
            "or raise fold_max_wasted_per_day",
        )
        raise ManifestErrors(self.errors)

    def _check_leases(self, data: Mapping[str, Any], consumer: Mapping[str, Any]) -> None:
        """A pull consumer's lease must outlast every job's whole run (its deadline,
        ``timeout_seconds``) plus a margin, or a long run's message is redelivered while
        it still runs."""
        if consumer.get("type", "http_pull") != "http_pull":
            return
        lease = consumer.get("visibility_timeout_seconds", DEFAULT_VISIBILITY_TIMEOUT)
        if not isinstance(lease, int):
            return
        for name, job in self._jobs(data):
            timeout = job.get("timeout_seconds", DEFAULT_TIMEOUT)
            if isinstance(timeout, int) and timeout + LEASE_MARGIN_SECONDS > lease:
                self.error(
                    ("jobs", name, "timeout_seconds"),
                    f"timeout {timeout} s plus a {LEASE_MARGIN_SECONDS} s margin exceeds the"
                    f" queue's visibility timeout ({lease} s): the lease could lapse mid-run"
                    " and the message be redelivered",
                    "raise queue.consumer.visibility_timeout_seconds to at least"
                    f" {timeout + LEASE_MARGIN_SECONDS} or lower timeout_seconds to at most"
                    f" {lease - LEASE_MARGIN_SECONDS}",
                )
