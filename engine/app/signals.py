"""Signals, in one place. SIGTERM and SIGINT for a long-running process (``serve``,
``consume``, ``ui``): the first asks it to stop, a second has its default effect. SIGINT
for a command an operator watches (``backfill``): the first asks it to stop starting
work, a second cancels what runs."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call ``stop`` once; a second signal has its default effect."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def handler(sig: signal.Signals) -> None:
        log.warning("%s: finishing the running jobs, then stopping", sig.name)
        for s in signals:
            loop.remove_signal_handler(s)
        stop()

    for s in signals:
        loop.add_signal_handler(s, handler, s)
    try:
        yield
    finally:
        for s in signals:
            loop.remove_signal_handler(s)


@contextmanager
def stop_then_cancel_on_sigint(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT sets ``stop``; a second one cancels the current task."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def interrupt() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
