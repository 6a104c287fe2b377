"""A job as the manifest declares it: its window, retries, catch-up and DST rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from engine.core.window import Window

DEFAULT_TIMEOUT = 300


class Overlap(StrEnum):
    """May two runs of one job overlap? (Kubernetes CronJob ``concurrencyPolicy``)."""

    FORBID = "forbid"
    ALLOW = "allow"


class CatchUpPolicy(StrEnum):
    """Which missing slots the reconciler enqueues (within the catch-up window)."""

    ALL = "all"
    LATEST = "latest"
    NONE = "none"


DEFAULT_CATCH_UP_SECONDS = 86_400


@dataclass(frozen=True, kw_only=True)
class CatchUp:
    """Only slots due within the last ``within_seconds`` are ever caught up, and none
    before the job's history starts: when it was first deployed, or ``since``."""

    policy: CatchUpPolicy = CatchUpPolicy.ALL
    within_seconds: int = DEFAULT_CATCH_UP_SECONDS
    since: datetime | None = None  # aware UTC


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
