"""Validated manifest data -> the frozen model, with every default in one place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.core.model import (
    ALL_EVENTS,
    DEFAULT_BINDING,
    DEFAULT_CATCH_UP_SECONDS,
    DEFAULT_COMPATIBILITY_DATE,
    DEFAULT_CRON_FLAG,
    DEFAULT_MIGRATIONS,
    DEFAULT_PROJECT_NAME,
    DEFAULT_SETTLE_SECONDS,
    DEFAULT_TEMPLATES,
    DEFAULT_TIMEOUT,
    DEFAULT_VISIBILITY_TIMEOUT,
    Action,
    Bucket,
    CatchUp,
    CatchUpPolicy,
    Consumer,
    ConsumerType,
    Dataset,
    Dst,
    Environment,
    Event,
    Gap,
    Job,
    Manifest,
    Notify,
    Overlap,
    Period,
    Plan,
    Queue,
    Repeat,
    Retention,
    RetryPolicy,
    Transport,
    Window,
    Worker,
)
from engine.manifest import since
from engine.schedule import cron
from engine.schedule.slots import longest_gap


def project_name(folder: str) -> str:
    """A folder's name made a project name (lower case, ``[a-z0-9-]``, at most 54 so that
    ``<name>-jobs-dlq`` is a valid queue name)."""
    name = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")[:54].rstrip("-")
    return name or DEFAULT_PROJECT_NAME


def build(
    data: dict[str, Any],
    filename: str,
    *,
    root: Path | None = None,
    reads: Mapping[str, frozenset[str]] | None = None,
) -> Manifest:
    """The model of a manifest that passed validation (defaults filled in). ``root`` is
    the project's folder (default: the manifest's), whose name is the default project
    name; ``reads`` the runtime variables each job's template reads, by job name."""
    project = data.get("name") or project_name((root or Path(filename).parent).resolve().name)
    cloudflare = "worker" in data
    w = data.get("worker") or {}
    q = data.get("queue") or {}
    c = q.get("consumer") or {}
    plan = Plan(data.get("plan", "free"))
    consumer = Consumer(
        type=ConsumerType(c.get("type", "http_pull")),
        max_batch_size=c.get("max_batch_size", 10),
        max_batch_timeout_seconds=c.get("max_batch_timeout_seconds", 5),
        retry_delay_seconds=c.get("retry_delay_seconds", 30),
        visibility_timeout_seconds=c.get("visibility_timeout_seconds", DEFAULT_VISIBILITY_TIMEOUT),
        max_concurrency=c.get("max_concurrency"),
        script=c.get("script"),
    )
    r2 = data.get("r2_bucket")
    ae = data.get("analytics_engine")
    envs = tuple(
        Environment(
            name=name,
            queue=(e or {}).get("queue"),
            dead_letter_queue=(e or {}).get("dead_letter_queue"),
            bucket_name=(e or {}).get("bucket_name"),
            preview_bucket_name=(e or {}).get("preview_bucket_name"),
            dataset=(e or {}).get("dataset"),
            cron_enabled=(e or {}).get("cron_enabled"),
            vars=MappingProxyType(dict((e or {}).get("vars", {}))),
        )
        for name, e in sorted((data.get("environments") or {}).items())
    )
    return Manifest(
        path=filename,
        name=project,
        cloudflare=cloudflare,
        transport=Transport(data.get("transport") or ("cloudflare" if cloudflare else "postgres")),
        migrations=data.get("migrations", DEFAULT_MIGRATIONS),
        templates=data.get("templates", DEFAULT_TEMPLATES),
        notify=_notify(data.get("notify") or []),
        worker=Worker(
            name=w.get("name", project),
            main=w.get("main", "worker.js"),
            compatibility_date=w.get("compatibility_date", DEFAULT_COMPATIBILITY_DATE),
            cron_flag=w.get("cron_flag", DEFAULT_CRON_FLAG),
            cron_enabled=w.get("cron_enabled", True),
            vars=MappingProxyType(dict(w.get("vars", {}))),
        ),
        plan=plan,
        trigger_budget=min(data.get("trigger_budget", plan.trigger_limit), plan.trigger_limit),
        queue=Queue(
            name=q.get("name", f"{project}-jobs"),
            binding=q.get("binding", DEFAULT_BINDING),
            dead_letter_queue=q.get("dead_letter_queue", f"{project}-jobs-dlq"),
            consumer=consumer,
        ),
        bucket=Bucket(
            binding=r2["binding"],
            bucket_name=r2["bucket_name"],
            preview_bucket_name=r2.get("preview_bucket_name"),
        )
        if r2
        else None,
        dataset=Dataset(binding=ae["binding"], dataset=ae["dataset"]) if ae else None,
        environments=envs,
        jobs=tuple(
            _build_job(job, j, (reads or {}).get(job, frozenset()))
            for job, j in sorted(data["jobs"].items())
        ),
        retention=Retention(**(data.get("retention") or {})),
        fold_max_wasted_per_day=data.get("fold_max_wasted_per_day", 1440),
    )


def _build_job(name: str, j: dict[str, Any], reads: frozenset[str]) -> Job:
    r = j.get("retry") or {}
    a = j.get("action")
    dst = j.get("dst") or {}
    zone = j.get("timezone")
    w = j.get("window")
    return Job(
        name=name,
        type=j.get("type", name),
        cron=j["cron"],
        sql=j.get("sql"),
        action=Action(name=a.get("name"), sql=a.get("sql"), python=a.get("python")) if a else None,
        window=Window(
            period=Period(w["period"]),
            offset=w.get("offset", 0),
            timezone=zone,
            settle_seconds=w.get("settle_seconds", DEFAULT_SETTLE_SECONDS),
        )
        if w
        else None,
        retry=RetryPolicy(
            max_attempts=r.get("max_attempts", 5),
            initial_delay_seconds=r.get("initial_delay_seconds", 30),
            max_delay_seconds=r.get("max_delay_seconds", 900),
            exponential=r.get("backoff", "exponential") == "exponential",
            jitter=r.get("jitter", "full") == "full",
        ),
        timeout_seconds=j.get("timeout_seconds", DEFAULT_TIMEOUT),
        overlap=Overlap(j.get("overlap", "forbid")),
        paused=j.get("paused", False),
        catch_up=_catch_up(j),
        allow_both_day_fields=j.get("allow_both_day_fields", False),
        allow_open_window=j.get("allow_open_window", False),
        timezone=zone,
        dst=Dst(gap=Gap(dst.get("gap", "shift")), overlap=Repeat(dst.get("overlap", "first"))),
        params=MappingProxyType(dict(j.get("params") or {})),
        description=j.get("description", ""),
        reads=reads,
        notify=_notify(j["notify"]) if "notify" in j else None,
        healthcheck=j.get("healthcheck"),
    )


def _notify(entries: list[dict[str, Any]]) -> tuple[Notify, ...]:
    return tuple(
        Notify(
            url=e["url"],
            events=frozenset(Event(v) for v in e["events"]) if "events" in e else ALL_EVENTS,
        )
        for e in entries
    )


def default_catch_up_seconds(expr: str, *, allow_both_day_fields: bool = False) -> int:
    """One day, or the schedule's longest gap between slots when that is longer: the
    window then always holds at least the latest slot."""
    gap = longest_gap(cron.parse(expr, allow_both_day_fields=allow_both_day_fields))
    return max(DEFAULT_CATCH_UP_SECONDS, int(gap.total_seconds()) if gap else 0)


def _catch_up(j: dict[str, Any]) -> CatchUp:
    c = j.get("catch_up") or {}
    within = c.get("within_seconds")
    if within is None:
        within = default_catch_up_seconds(
            j["cron"], allow_both_day_fields=j.get("allow_both_day_fields", False)
        )
    return CatchUp(
        policy=CatchUpPolicy(c.get("policy", "all")),
        within_seconds=within,
        since=since.instant(c["since"], j.get("timezone")) if "since" in c else None,
    )
