"""One attempt's deadline on an injected monotonic clock: what each wait gets, when the
statement_timeout is re-set, and that nothing starts past the deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.core.errors import JobFailed
from engine.runtime.deadline import CLIENT_TIMEOUT_MARGIN, Deadline
from tests.fixtures.aio import run


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingTx:
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    async def execute(self, sql: str, *args: Any, timeout: float | None = None) -> int:
        self.calls.append((sql, args))
        return 1


def test_each_wait_gets_what_is_left_and_nothing_after_the_deadline() -> None:
    clock = Clock()
    d = Deadline(10, clock)
    clock.now += 4
    assert d.left() == 6
    clock.now += 6
    with pytest.raises(JobFailed) as caught:
        d.left()
    assert (caught.value.error_class, caught.value.transient) == ("deadline_exceeded", True)
    assert str(caught.value) == (
        "the run exceeded its deadline of 10 s (timeout_seconds bounds the lock wait,"
        " every statement and the action)"
    )


def test_statement_timeout_is_reset_to_the_time_left_only_when_it_would_overrun() -> None:
    clock, tx = Clock(), RecordingTx()
    d = Deadline(10, clock)
    d.statement_timeout = 10.0  # set by the claim
    clock.now += 0.0625  # a quick claim: the timeout in force overruns by under the slack
    assert run(d.bound_statement(tx)) == 9.9375 + CLIENT_TIMEOUT_MARGIN
    assert tx.calls == []
    clock.now += 3.5  # a long statement: the next one gets only what is left
    run(d.bound_statement(tx))
    assert tx.calls == [("SELECT set_config('statement_timeout', $1, true)", ("6438ms",))]
    assert d.statement_timeout == 6.438


def test_an_action_past_the_deadline_is_not_started() -> None:
    clock = Clock()
    d = Deadline(1, clock)
    clock.now += 2
    started: list[bool] = []

    async def action() -> int:
        started.append(True)
        return 1

    with pytest.raises(JobFailed):
        run(d.bound(action))
    assert started == []


def test_an_action_that_outlasts_the_time_left_is_cancelled_as_a_deadline() -> None:
    clock = Clock()
    d = Deadline(1, clock)
    clock.now += 0.95  # 50 ms left

    async def action() -> int:
        await asyncio.sleep(5)
        return 1

    with pytest.raises(JobFailed) as caught:
        run(d.bound(action))
    assert caught.value.error_class == "deadline_exceeded"
