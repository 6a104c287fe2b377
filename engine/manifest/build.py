"""Validated manifest data -> the frozen model, with every default in one place."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from engine.core.model import (
    DEFAULT_CATCH_UP_SECONDS,
    DEFAULT_SETTLE_SECONDS,
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
    Gap,
    Job,
    Manifest,
    Overlap,
    Period,
    Plan,
    Queue,
    Repeat,
    Retention,
    RetryPolicy,
    Window,
    Worker,
)
from engine.schedule import cron
from engine.schedule.slots import longest_gap


def build(data: dict[str, Any], filename: str) -> Manifest:
    """The model of a manifest that passed validation (defaults filled in)."""
    w = data["worker"]
    q = data["queue"]
    c = q.get("consumer") or {}
    plan = Plan(data["plan"])
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
        worker=Worker(
            name=w["name"],
            main=w.get("main", "worker.js"),
            compatibility_date=w["compatibility_date"],
            cron_flag=w["cron_flag"],
            cron_enabled=w.get("cron_enabled", True),
            vars=MappingProxyType(dict(w.get("vars", {}))),
        ),
        plan=plan,
        trigger_budget=min(data.get("trigger_budget", plan.trigger_limit), plan.trigger_limit),
        queue=Queue(
            name=q["name"],
            binding=q["binding"],
            dead_letter_queue=q["dead_letter_queue"],
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
        jobs=tuple(_build_job(name, j) for name, j in sorted(data["jobs"].items())),
        retention=Retention(**(data.get("retention") or {})),
        fold_max_wasted_per_day=data.get("fold_max_wasted_per_day", 1440),
    )


def _build_job(name: str, j: dict[str, Any]) -> Job:
    r = j.get("retry") or {}
    a = j.get("action")
    dst = j.get("dst") or {}
    zone = j.get("timezone")
    return Job(
        name=name,
        type=j["type"],
        cron=j["cron"],
        sql=j.get("sql"),
        action=Action(name=a["name"], sql=a["sql"]) if a else None,
        window=Window(
            period=Period(j["window"]["period"]),
            offset=j["window"].get("offset", 0),
            timezone=zone,
            settle_seconds=j["window"].get("settle_seconds", DEFAULT_SETTLE_SECONDS),
        ),
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
    return CatchUp(policy=CatchUpPolicy(c.get("policy", "all")), within_seconds=within)
