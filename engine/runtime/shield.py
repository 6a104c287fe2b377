"""Final writes (a dead letter, a failure row, an ack) must finish even when the caller is
cancelled: shield them, bound them, and re-raise the cancellation afterwards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from engine.core.errors import JobFailed

log = logging.getLogger(__name__)

T = TypeVar("T")


async def finish(write: Awaitable[T], timeout: float) -> T:
    """Await ``write`` to the end even if cancelled meanwhile (then re-raise the
    cancellation). A write that outlasts ``timeout`` raises a transient JobFailed."""
    task = asyncio.ensure_future(asyncio.wait_for(write, timeout))
    try:
        return await asyncio.shield(task)
    except TimeoutError:
        raise JobFailed(
            f"final write timed out after {timeout:g}s", transient=True, error_class="timeout"
        ) from None
    except asyncio.CancelledError:
        await asyncio.wait([task], timeout=timeout)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("final write failed during cancellation: %s", task.exception())
        raise
