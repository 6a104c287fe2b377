"""Ctrl-C during a backfill (engine.app.signals.stop_then_cancel_on_sigint): the first
asks it to stop starting slots, a second cancels what runs; outside, SIGINT is Python's
again."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from engine.app.signals import stop_then_cancel_on_sigint


def test_a_first_ctrl_c_asks_to_stop_and_a_second_cancels_the_running_task() -> None:
    seen: list[str] = []

    async def backfill() -> None:
        stop = asyncio.Event()
        with stop_then_cancel_on_sigint(stop):
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.wait_for(stop.wait(), 5)
            seen.append("asked to stop")
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(5)  # cancelled here
            seen.append("not cancelled")

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(backfill())
    assert seen == ["asked to stop"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
