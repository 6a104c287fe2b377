"""The manifest's top level beyond the schema: the trigger budget, environments, the
Worker's compatibility date, the queue consumer and its lease against every job's run,
the keys that need a Worker, the project's folders and its notification targets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.core.model import DEFAULT_TIMEOUT, DEFAULT_VISIBILITY_TIMEOUT, Plan
from engine.manifest.checker import Checker
from engine.manifest.notifychecks import check_notify

#: wrangler 4.86.0 bundles a workerd dated 2026-05-03; later dates fail to deploy locally.
MAX_COMPATIBILITY_DATE = "2026-05-03"
#: A pull consumer's lease must outlast a run's deadline by this much: the client-side
#: backstop after a statement timeout, the failure or dead-letter write, and the ack.
LEASE_MARGIN_SECONDS = 60
#: Top-level keys that only the Worker's files use (generated only with a worker: block).
WORKER_KEYS = ("plan", "trigger_budget", "fold_max_wasted_per_day", "analytics_engine")
#: The project's folders, relative to the manifest.
FOLDER_KEYS = ("migrations", "templates")


def check_top(c: Checker, data: Mapping[str, Any]) -> None:
    plan, budget = data.get("plan"), data.get("trigger_budget")
    limit = Plan(plan).trigger_limit if plan in ("free", "paid") else None
    if limit is not None and isinstance(budget, int) and budget > limit:
        c.error(
            ("trigger_budget",),
            f"{budget} exceeds the {plan} plan's {limit} cron triggers",
            f"set trigger_budget to at most {limit}",
        )
    _check_environments(c, data)
    _check_worker_keys(c, data)
    _check_folders(c, data)
    check_notify(c, ("notify",), data.get("notify"))
    worker = data.get("worker")
    if isinstance(worker, dict):
        date = worker.get("compatibility_date")
        if isinstance(date, str) and date > MAX_COMPATIBILITY_DATE:
            c.error(
                ("worker", "compatibility_date"),
                f"'{date}' is later than the pinned workerd runtime ({MAX_COMPATIBILITY_DATE})",
                f"use {MAX_COMPATIBILITY_DATE} or earlier",
            )
        elif isinstance(date, str):
            try:
                datetime.strptime(date, "%Y-%m-%d")
            except ValueError:
                c.error(
                    ("worker", "compatibility_date"),
                    f"'{date}' is not a calendar date",
                    "write a real date as YYYY-MM-DD",
                )
    consumer = (
        (data.get("queue") or {}).get("consumer") if isinstance(data.get("queue"), dict) else None
    )
    if "worker" in data:  # the lease is Cloudflare's: serve's local queue renews its own
        _check_leases(c, data, consumer if isinstance(consumer, dict) else {})
    if isinstance(consumer, dict) and consumer.get("type") == "worker":
        script = consumer.get("script")
        if not isinstance(script, str):
            c.error(
                ("queue", "consumer"),
                "a worker consumer needs a 'script'",
                "name the module that exports the queue() handler, or use type: http_pull",
            )
        elif not c.inside(script):
            c.error(
                ("queue", "consumer", "script"),
                f"script '{script}' is outside the project folder",
                "keep the consumer module in the folder of the manifest or below it",
            )
        elif not c.is_file(script):
            c.error(
                ("queue", "consumer", "script"),
                f"script '{script}' does not exist",
                f"create {script} or fix the path",
            )


def _check_worker_keys(c: Checker, data: Mapping[str, Any]) -> None:
    """Without a worker: block no Worker is generated, so its settings would do nothing."""
    if "worker" in data:
        return
    for key in WORKER_KEYS:
        if key in data:
            c.error(
                (key,),
                f"'{key}' only matters to the Cloudflare Worker, which this manifest does not"
                " configure",
                f"add a 'worker:' block to generate the Worker's files, or remove '{key}'",
                key=True,
            )
    if data.get("transport") == "cloudflare":
        c.error(
            ("transport",),
            "transport cloudflare needs the Worker that sends slots to the queue, and this"
            " manifest has no 'worker:' block",
            "add a 'worker:' block, or use transport: postgres (cronwright serve)",
        )
    queue = data.get("queue")
    consumer = queue.get("consumer") if isinstance(queue, dict) else None
    if isinstance(consumer, dict) and consumer.get("type") == "worker":
        c.error(
            ("queue", "consumer", "type"),
            "a worker consumer runs inside the Worker, and this manifest has no 'worker:' block",
            "add a 'worker:' block, or remove the consumer type",
        )


def _check_folders(c: Checker, data: Mapping[str, Any]) -> None:
    """``migrations:`` and ``templates:`` are folders inside the project."""
    for key in FOLDER_KEYS:
        rel = data.get(key)
        if not isinstance(rel, str):
            continue
        try:
            folder = (c.root / rel).resolve()
            exists = folder.is_dir()
        except (OSError, ValueError):  # a NUL or an over-long name: no folder has it
            folder, exists = None, False
        if folder is not None and folder != c.root.resolve() and not c.inside(rel):
            c.error(
                (key,),
                f"'{rel}' is outside the project folder",
                "name a folder inside the folder of the manifest",
            )
        elif not exists:
            c.error((key,), f"folder '{rel}' does not exist", f"create {rel}/ or fix the path")


def _check_environments(c: Checker, data: Mapping[str, Any]) -> None:
    """Each environment deploys a Worker that fires the crons: two sending to one queue
    would send every slot twice."""
    envs, queue = data.get("environments"), data.get("queue")
    if not isinstance(envs, dict) or not isinstance(queue, dict):
        return
    seen: dict[str, str] = {}
    for name in sorted(envs, key=str):  # keys may be any YAML scalar
        env = envs[name] if isinstance(envs[name], dict) else {}
        q = env.get("queue", queue.get("name"))
        if not isinstance(q, str):
            continue
        if q in seen:
            c.error(
                ("environments", name),
                f"environments '{seen[q]}' and '{name}' both send to queue '{q}', "
                "so every slot would be sent twice",
                f"give environments.{name} its own 'queue:'",
                key=True,
            )
        else:
            seen[q] = name


def _check_leases(c: Checker, data: Mapping[str, Any], consumer: Mapping[str, Any]) -> None:
    """A pull consumer's lease must outlast every job's whole run (its deadline,
    ``timeout_seconds``) plus a margin, or a long run's message is redelivered while
    it still runs."""
    if consumer.get("type", "http_pull") != "http_pull":
        return
    lease = consumer.get("visibility_timeout_seconds", DEFAULT_VISIBILITY_TIMEOUT)
    if not isinstance(lease, int):
        return
    for name, job in c.jobs(data):
        timeout = job.get("timeout_seconds", DEFAULT_TIMEOUT)
        if isinstance(timeout, int) and timeout + LEASE_MARGIN_SECONDS > lease:
            c.error(
                ("jobs", name, "timeout_seconds"),
                f"timeout {timeout} s plus a {LEASE_MARGIN_SECONDS} s margin exceeds the"
                f" queue's visibility timeout ({lease} s): the lease could lapse mid-run"
                " and the message be redelivered",
                "raise queue.consumer.visibility_timeout_seconds to at least"
                f" {timeout + LEASE_MARGIN_SECONDS} or lower timeout_seconds to at most"
                f" {lease - LEASE_MARGIN_SECONDS}",
            )
