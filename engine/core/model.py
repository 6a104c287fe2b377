"""The manifest as frozen, keyword-only dataclasses. No I/O here. The job-level ones live
in engine/core/job.py and engine/core/window.py and are re-exported from here."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from engine.core.errors import ConfigError, MessageError
from engine.core.job import (
    ALL_EVENTS,
    DEFAULT_CATCH_UP_SECONDS,
    DEFAULT_TIMEOUT,
    Action,
    CatchUp,
    CatchUpPolicy,
    Dst,
    Event,
    Gap,
    Job,
    Notify,
    Overlap,
    Repeat,
    RetryPolicy,
)
from engine.core.window import DEFAULT_SETTLE_SECONDS, Period, Window

__all__ = [
    "ALL_EVENTS",
    "DEFAULT_BINDING",
    "DEFAULT_CATCH_UP_SECONDS",
    "DEFAULT_COMPATIBILITY_DATE",
    "DEFAULT_CRON_FLAG",
    "DEFAULT_MIGRATIONS",
    "DEFAULT_PROJECT_NAME",
    "DEFAULT_SETTLE_SECONDS",
    "DEFAULT_TEMPLATES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "HANDBACK_ROOM",
    "MAX_QUEUE_RETRIES",
    "Action",
    "Bucket",
    "CatchUp",
    "CatchUpPolicy",
    "Consumer",
    "ConsumerType",
    "Dataset",
    "Dst",
    "Environment",
    "Event",
    "Gap",
    "Job",
    "Manifest",
    "Notify",
    "Overlap",
    "Period",
    "Plan",
    "Queue",
    "Repeat",
    "Retention",
    "RetryPolicy",
    "Transport",
    "Window",
    "Worker",
]

DEFAULT_VISIBILITY_TIMEOUT = 900  # above the default job timeout: a lease outlasts a run
# Deliveries the queue allows beyond every job's attempts, for hand-backs that are not job
# attempts (a slot not due yet, a dead letter not written); see engine/runtime/budget.py.
HANDBACK_ROOM = 3
MAX_QUEUE_RETRIES = 100  # Cloudflare's cap on a consumer's max_retries
# What a manifest leaves out of its Worker and queue (the names come from its project name).
DEFAULT_PROJECT_NAME = "cronwright"  # when the manifest's folder name has nothing usable
DEFAULT_COMPATIBILITY_DATE = "2026-04-01"
DEFAULT_CRON_FLAG = "CRONWRIGHT_CRON"
DEFAULT_BINDING = "JOBS"
# The project's folders, relative to the manifest's.
DEFAULT_MIGRATIONS = "sql/migrations"
DEFAULT_TEMPLATES = "sql"


class Transport(StrEnum):
    """Where slots are sent: the Cloudflare Queue the Worker feeds, or the local queue
    (``cronwright.queue``) that ``serve`` feeds."""

    CLOUDFLARE = "cloudflare"
    POSTGRES = "postgres"

    @property
    def grace_seconds(self) -> int:
        """How long a due slot with no record is left to its sender before it counts as
        missing: the Worker records nothing until a run starts; the local scheduler
        records every slot it sends, at once."""
        return 600 if self is Transport.CLOUDFLARE else 0


class Plan(StrEnum):
    FREE = "free"
    PAID = "paid"

    @property
    def trigger_limit(self) -> int:
        """Cloudflare's cron trigger budget per account."""
        return 5 if self is Plan.FREE else 250


class ConsumerType(StrEnum):
    HTTP_PULL = "http_pull"
    WORKER = "worker"


def _by_name(job: Job) -> str:
    return job.name


@dataclass(frozen=True, kw_only=True)
class Consumer:
    type: ConsumerType = ConsumerType.HTTP_PULL
    max_batch_size: int = 10
    max_batch_timeout_seconds: int = 5
    retry_delay_seconds: int = 30
    visibility_timeout_seconds: int = DEFAULT_VISIBILITY_TIMEOUT
    max_concurrency: int | None = None
    script: str | None = None  # worker consumers: module whose default export handles queue()


@dataclass(frozen=True, kw_only=True)
class Queue:
    name: str
    binding: str = DEFAULT_BINDING
    dead_letter_queue: str
    consumer: Consumer = field(default_factory=Consumer)


@dataclass(frozen=True, kw_only=True)
class Bucket:
    binding: str
    bucket_name: str
    preview_bucket_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class Dataset:
    binding: str
    dataset: str


@dataclass(frozen=True, kw_only=True)
class Environment:
    """An ``[env.NAME]`` section. Unset fields inherit the top level; wrangler does not
    inherit bindings, so the generator repeats them."""

    name: str
    queue: str | None = None
    dead_letter_queue: str | None = None
    bucket_name: str | None = None
    preview_bucket_name: str | None = None
    dataset: str | None = None
    cron_enabled: bool | None = None
    vars: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class Worker:
    name: str
    main: str = "worker.js"
    compatibility_date: str = DEFAULT_COMPATIBILITY_DATE
    cron_flag: str = DEFAULT_CRON_FLAG
    cron_enabled: bool = True
    vars: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class Retention:
    """How long finished history is kept (``cronwright prune``, daily in serve/consume):
    superseded runs, and dead letters once replayed or purged."""

    runs_days: int = 30
    dead_letters_days: int = 90


@dataclass(frozen=True, kw_only=True)
class Manifest:
    path: str
    worker: Worker  # always filled: defaults from the project name without a worker: block
    plan: Plan
    trigger_budget: int
    queue: Queue  # always filled, like worker: serve's local queue has its name
    bucket: Bucket | None
    dataset: Dataset | None
    environments: tuple[Environment, ...]
    jobs: tuple[Job, ...]
    retention: Retention = field(default_factory=Retention)
    # Folding schedules onto fewer triggers may waste at most this many invocations a day.
    fold_max_wasted_per_day: int = 1440
    name: str = DEFAULT_PROJECT_NAME  # the project's name: worker and queue names derive from it
    #: Does the manifest configure Cloudflare (a ``worker:`` block)? Only then are the
    #: Worker's files generated and the trigger budget checked.
    cloudflare: bool = True
    transport: Transport = Transport.CLOUDFLARE
    migrations: str = DEFAULT_MIGRATIONS  # the project's migrations, beside the manifest
    templates: str = DEFAULT_TEMPLATES  # the folder every SQL template lives under
    notify: tuple[Notify, ...] = ()  # every job's, unless a job has its own list

    @property
    def migrations_dir(self) -> Path:
        return Path(self.path).parent / self.migrations

    def notify_for(self, job: Job) -> tuple[Notify, ...]:
        """Who is told about ``job``: its own list when it has one (``[]`` silences it),
        else the manifest's."""
        return self.notify if job.notify is None else job.notify

    def job_by_type(self, type_: str) -> Job | None:
        for job in self.jobs:
            if job.type == type_:
                return job
        return None

    def job_by_name(self, name: str) -> Job | None:
        for job in self.jobs:
            if job.name == name:
                return job
        return None

    def find_job(self, type_or_name: str) -> Job:
        """The job with this message type or name; a MessageError names the known ones."""
        job = self.job_by_type(type_or_name) or self.job_by_name(type_or_name)
        if job is None:
            spellings = sorted({*(j.name for j in self.jobs), *(j.type for j in self.jobs)})
            close = difflib.get_close_matches(type_or_name, spellings, n=1)
            known = ", ".join(f"{j.name} ({j.type})" for j in sorted(self.jobs, key=_by_name))
            raise MessageError(
                f"unknown job '{type_or_name}' (give a job name or its message type)",
                hint=f"did you mean '{close[0]}'?" if close else f"known jobs (types): {known}",
            )
        return job

    @property
    def consumer_max_retries(self) -> int:
        """The queue must never dead-letter before a job's own policy allows; the pull
        consumer also gets room for hand-backs that are not job attempts."""
        most = max((j.retry.max_retries for j in self.jobs), default=0)
        room = HANDBACK_ROOM if self.queue.consumer.type is ConsumerType.HTTP_PULL else 0
        return min(most + room, MAX_QUEUE_RETRIES)

    def for_environment(self, name: str | None) -> Manifest:
        """The manifest as deployed to ``[env.NAME]``: the environment's queue, bucket,
        dataset, cron flag and vars in place of the top level's. ``None`` is the top level."""
        if name is None:
            return self
        env = next((e for e in self.environments if e.name == name), None)
        if env is None:
            known = ", ".join(e.name for e in self.environments) or "none"
            raise ConfigError(f"unknown environment '{name}'", hint=f"known environments: {known}")
        q, w = self.queue, self.worker
        return replace(
            self,
            queue=replace(
                q,
                name=env.queue or q.name,
                dead_letter_queue=env.dead_letter_queue or q.dead_letter_queue,
            ),
            bucket=replace(
                self.bucket,
                bucket_name=env.bucket_name or self.bucket.bucket_name,
                preview_bucket_name=env.preview_bucket_name or self.bucket.preview_bucket_name,
            )
            if self.bucket
            else None,
            dataset=replace(self.dataset, dataset=env.dataset or self.dataset.dataset)
            if self.dataset
            else None,
            worker=replace(
                w,
                cron_enabled=w.cron_enabled if env.cron_enabled is None else env.cron_enabled,
                vars=MappingProxyType({**w.vars, **env.vars}),
            ),
            environments=(),
        )
