"""A job as the manifest declares it: its window, retries, catch-up, DST rules, action
and who is told about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from engine.core.window import DEFAULT_SETTLE_SECONDS, Window

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
    """Only slots due within the last ``within_seconds`` are ever caught up. Slots before
    the job was first deployed are never caught up unless they are at or after ``since``
    (an aware UTC datetime)."""

    policy: CatchUpPolicy = CatchUpPolicy.ALL
    within_seconds: int = DEFAULT_CATCH_UP_SECONDS
    since: datetime | None = None


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
    """Work in place of a SQL statement: a built-in action ``name`` whose input rows the
    template ``sql`` selects, or ``python``, an async function of the project named
    ``module.path:function`` (the project's folder on the import path)."""

    name: str | None = None
    sql: str | None = None
    python: str | None = None


class Event(StrEnum):
    """What a notification target is told about."""

    DEAD_LETTER = "dead_letter"
    MISSING = "missing"  # a slot missing past its grace
    RECOVERY = "recovery"  # a job succeeds again after a dead letter or a missing slot
    NEAR_TIMEOUT = "near_timeout"  # a run took more than 80% of its timeout_seconds


ALL_EVENTS = frozenset(Event)


@dataclass(frozen=True, kw_only=True)
class Notify:
    """An Apprise URL and the events sent to it. ``${NAME}`` in the URL is replaced from
    the environment at send time (engine/core/envurl.py), so no secret is in the manifest."""

    url: str
    events: frozenset[Event] = ALL_EVENTS


@dataclass(frozen=True, kw_only=True)
class Job:
    name: str
    type: str
    cron: str
    sql: str | None = None
    action: Action | None = None
    window: Window | None = None  # None: the template reads neither window bound
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
    #: The runtime variables its template reads (``slot``, ``window_end``, ...).
    reads: frozenset[str] = frozenset()
    #: Who is told about this job; None inherits the manifest's list, () silences it.
    notify: tuple[Notify, ...] | None = None
    #: Pinged on start, success and failure (Healthchecks.io style); ``${NAME}`` allowed.
    healthcheck: str | None = None

    @property
    def template(self) -> str | None:
        """The SQL template file this job renders (its statement or its built-in action's
        query); None for a python action."""
        if self.action is not None:
            return self.action.sql
        return self.sql

    @property
    def settle_seconds(self) -> int:
        """``window.settle_seconds``; the default when the job has no window."""
        return self.window.settle_seconds if self.window else DEFAULT_SETTLE_SECONDS

    def bounds(self, slot: datetime) -> tuple[datetime | None, datetime | None]:
        """``[window_start, window_end)`` of the slot; (None, None) without a window."""
        return self.window.bounds(slot) if self.window else (None, None)
