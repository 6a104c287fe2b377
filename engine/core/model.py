"""The manifest as frozen, keyword-only dataclasses. No I/O here."""

from __future__ import annotations

import calendar
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.errors import ConfigError, MessageError

DEFAULT_TIMEOUT = 300
DEFAULT_VISIBILITY_TIMEOUT = 900  # above the default job timeout: a lease outlasts a run
# Deliveries the queue allows beyond every job's attempts, for hand-backs that are not job
# attempts (a slot not due yet, a dead letter not written); see engine/runtime/budget.py.
HANDBACK_ROOM = 3
MAX_QUEUE_RETRIES = 100  # Cloudflare's cap on a consumer's max_retries
DEFAULT_SETTLE_SECONDS = 3600  # late events of day D are counted by the run this long after D ends


class Plan(StrEnum):
    FREE = "free"
    PAID = "paid"

    @property
    def trigger_limit(self) -> int:
        """Cloudflare's cron trigger budget per account."""
        return 5 if self is Plan.FREE else 250


class Overlap(StrEnum):
    """May two runs of one job overlap? (Kubernetes CronJob ``concurrencyPolicy``)."""

    FORBID = "forbid"
    ALLOW = "allow"


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"  # ISO weeks: Monday 00:00 UTC
    MONTH = "month"


class CatchUpPolicy(StrEnum):
    """Which missing slots the reconciler enqueues (within the catch-up window)."""

    ALL = "all"
    LATEST = "latest"
    NONE = "none"


DEFAULT_CATCH_UP_SECONDS = 86_400


@dataclass(frozen=True, kw_only=True)
class CatchUp:
    """Only slots due within the last ``within_seconds`` are ever caught up."""

    policy: CatchUpPolicy = CatchUpPolicy.ALL
    within_seconds: int = DEFAULT_CATCH_UP_SECONDS


class Gap(StrEnum):
    """A local time that does not exist (spring forward): run at the first minute after
    the gap, once (``shift``), or not at all (``skip``)."""

    SHIFT = "shift"
    SKIP = "skip"


class Repeat(StrEnum):
    """A local time that occurs twice (fall back): run at the ``first`` occurrence only,
    or at ``both``."""

    FIRST = "first"
    BOTH = "both"


@dataclass(frozen=True, kw_only=True)
class Dst:
    gap: Gap = Gap.SHIFT
    overlap: Repeat = Repeat.FIRST


class ConsumerType(StrEnum):
    HTTP_PULL = "http_pull"
    WORKER = "worker"


def _by_name(job: Job) -> str:
    return job.name


def _floor(t: datetime, period: Period) -> datetime:
    t = t.replace(second=0, microsecond=0)
    if period is Period.HOUR:
        return t.replace(minute=0)
    if period is Period.DAY:
        return t.replace(minute=0, hour=0)
    if period is Period.WEEK:
        return t.replace(minute=0, hour=0) - timedelta(days=t.weekday())
    return t.replace(minute=0, hour=0, day=1)


def _shift(t: datetime, period: Period, n: int) -> datetime:
    if period is Period.HOUR:
        return t + timedelta(hours=n)
    if period is Period.DAY:
        return t + timedelta(days=n)
    if period is Period.WEEK:
        return t + timedelta(weeks=n)
    months = t.year * 12 + (t.month - 1) + n
    year, month = divmod(months, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    return t.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True, kw_only=True)
class Window:
    """The data a run covers: the calendar ``period`` containing the slot, moved by
    ``offset`` periods. ``hour, -1`` at 10:00 is [09:00, 10:00); ``week, -1`` is the
    previous ISO week (from Monday 00:00); ``month, -1`` on 1 March is February. A
    function of the slot only, never of the clock."""

    period: Period
    offset: int = 0
    timezone: str | None = None  # the job's zone: periods are local hours, days, months
    #: Day D is settled (re-aggregated in full) by the first run at or after
    #: D+1 00:00 + settle_seconds; templates that keep a day so far read it.
    settle_seconds: int = DEFAULT_SETTLE_SECONDS

    def bounds(self, slot: datetime) -> tuple[datetime, datetime]:
        if self.timezone is None:
            start = _shift(_floor(slot, self.period), self.period, self.offset)
            return start, _shift(start, self.period, 1)
        zone = ZoneInfo(self.timezone)
        local = slot.astimezone(zone)
        if self.period is Period.HOUR:  # hours are absolute: an hour that repeats is two
            start = _floor(local, self.period).astimezone(slot.tzinfo)
            return start + timedelta(hours=self.offset), start + timedelta(hours=self.offset + 1)
        # Days and months are calendar periods: each bound is the first instant whose local
        # time reaches that midnight (a midnight inside a gap starts when the gap ends).
        wall = _shift(_floor(local.replace(tzinfo=None), self.period), self.period, self.offset)
        end = _shift(wall, self.period, 1)
        return _instant(wall, zone, slot), _instant(end, zone, slot)


def _instant(wall: datetime, zone: ZoneInfo, like: datetime) -> datetime:
    return wall.replace(tzinfo=zone, fold=0).astimezone(like.tzinfo)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Airflow's ``retries`` / ``retry_delay`` / ``retry_exponential_backoff`` /
    ``max_retry_delay``, with attempts counted from 1 like Cloudflare's
    ``message.attempts``."""

    max_attempts: int = 5
    initial_delay_seconds: int = 30
    max_delay_seconds: int = 900
    exponential: bool = True
    jitter: bool = True

    @property
    def max_retries(self) -> int:
        return self.max_attempts - 1


@dataclass(frozen=True, kw_only=True)
class Action:
    """A built-in action in place of a SQL statement. ``sql`` selects its input rows."""

    name: str
    sql: str


@dataclass(frozen=True, kw_only=True)
class Job:
    name: str
    type: str
    cron: str
    sql: str | None = None
    action: Action | None = None
    window: Window
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: int = DEFAULT_TIMEOUT
    overlap: Overlap = Overlap.FORBID
    paused: bool = False
    catch_up: CatchUp = field(default_factory=CatchUp)
    allow_both_day_fields: bool = False
    allow_open_window: bool = False  # a window that ends after the slot (slot-only templates)
    timezone: str | None = None  # IANA name: the cron is read in this zone; None is UTC
    dst: Dst = field(default_factory=Dst)
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""

    @property
    def template(self) -> str:
        """The SQL template file this job renders (its statement or its action's query)."""
        if self.action is not None:
            return self.action.sql
        assert self.sql is not None
        return self.sql


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
    binding: str
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
    compatibility_date: str
    cron_flag: str = "ENABLE_CRON"
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
    worker: Worker
    plan: Plan
    trigger_budget: int
    queue: Queue
    bucket: Bucket | None
    dataset: Dataset | None
    environments: tuple[Environment, ...]
    jobs: tuple[Job, ...]
    retention: Retention = field(default_factory=Retention)
    # Folding schedules onto fewer triggers may waste at most this many invocations a day.
    fold_max_wasted_per_day: int = 1440

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
