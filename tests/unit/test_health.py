"""Quiet outages: a long-running process reports trouble once per distinct error per
interval, says how long the database has been away, and says once when it is back."""

from __future__ import annotations

import logging

import pytest

from engine.app.health import Health
from engine.core.errors import DatabaseError, QueueError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused() -> DatabaseError:
    return DatabaseError(
        "cannot connect to postgresql://app:***@db:5432/app: connection refused",
        transient=True,
        error_class="connection_failure",
    )


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_a_90_second_outage_of_many_failing_loops_writes_a_handful_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    health = Health(interval=60.0, monotonic=clock)
    # Four workers claiming every second, a heartbeat, the reconciler and the gauges.
    for second in range(90):
        clock.now = 1000.0 + second
        for where in ("claim", "claim", "claim", "claim", "lease extension", "reconcile pass"):
            health.failed(where, refused())
    clock.now = 1090.0
    health.ok()
    health.ok()
    assert lines(caplog) == [
        "database unreachable for 0 s: cannot connect to postgresql://app:***@db:5432/app:"
        " connection refused; retrying",
        "database unreachable for 60 s: cannot connect to postgresql://app:***@db:5432/app:"
        " connection refused; retrying",
        "database reachable again after 90 s",
    ]


def test_each_distinct_error_of_an_outage_is_said_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    health = Health(interval=60.0, monotonic=clock)
    other = DatabaseError("too many connections", transient=True, error_class="too_many")
    for _ in range(5):
        health.failed("claim", refused())
        health.failed("claim", other)
    assert len(caplog.records) == 2


def test_a_failure_that_is_not_an_outage_names_its_loop_and_class_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    health = Health(interval=60.0, monotonic=clock)
    for _ in range(10):
        health.failed("metrics refresh", TypeError("can't compare offset-naive and offset-aware"))
    clock.now += 61
    health.failed("metrics refresh", TypeError("can't compare offset-naive and offset-aware"))
    assert (
        lines(caplog)
        == [
            "metrics refresh failed: TypeError: can't compare offset-naive and offset-aware; going on"
        ]
        * 2
    )


def test_outages_of_the_database_and_of_the_queues_api_are_told_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    health = Health(interval=60.0, monotonic=clock)
    health.failed("pull", QueueError("HTTP 503", transient=True, error_class="unavailable"))
    health.failed("claim", refused())
    clock.now += 5
    health.ok("Cloudflare Queues API")
    assert lines(caplog)[0] == "Cloudflare Queues API unreachable for 0 s: HTTP 503; retrying"
    assert lines(caplog)[-1] == "Cloudflare Queues API reachable again after 5 s"
    assert not any("database reachable" in line for line in lines(caplog))
