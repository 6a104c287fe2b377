"""A python action's run: the one argument the project's function gets, and its call as
the job's work inside the job's transaction (the ledger's claim before it, the success
and the queue's ack after it, one COMMIT for all), within the run's deadline.

What the function raises is classified as any failure of a run: a Postgres error by its
SQLSTATE (translated at the adapter), one of cronwright's by its ``transient`` flag
(:class:`engine.core.errors.RetryLater` for the user's own), anything else is
permanent and dead-letters the slot with its class and message; its traceback goes to
the log.
"""

from __future__ import annotations

import copy
import logging
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.core.describe import python_type
from engine.core.errors import CronwrightError, JobFailed
from engine.core.model import Job
from engine.core.times import iso
from engine.runtime import pyload
from engine.runtime.deadline import Deadline
from engine.runtime.ports import Tx
from engine.runtime.transaction import Step

log = logging.getLogger(__name__)

MAX_ROWS = 2**63 - 1  # the ledger's rows column is a bigint


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRun:
    """The one argument of a python action: one slot of its job."""

    job: str  # the job's name
    slot: datetime  # aware, UTC
    window_start: datetime | None  # aware, UTC; None when the job has no window
    window_end: datetime | None
    params: Mapping[str, Any]  # the job's params, read-only
    rerun: bool  # an operator asked to recompute a slot that succeeded
    connection: Any  # an asyncpg connection inside the job's transaction


class PythonActions:
    """The project's action functions, each loaded the first time a slot of its job
    runs, and kept for the executor's life."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._loaded: dict[str, pyload.Function] = {}

    def _function(self, target: str) -> pyload.Function:
        fn = self._loaded.get(target)
        if fn is None:
            fn = self._loaded[target] = pyload.load(self._root, target)
        return fn

    def step(
        self, job: Job, target: str, slot: datetime, *, rerun: bool, deadline: Deadline
    ) -> Step:
        """The job's work for one slot: ``target``, its function, called with the run."""
        start, end = job.bounds(slot)
        params = MappingProxyType(copy.deepcopy(dict(job.params)))  # nothing leaks to a later run

        async def step(tx: Tx) -> int:
            fn = self._function(target)
            await deadline.bound_statement(tx)  # its statements end at the deadline too

            def call(connection: Any) -> Any:
                run = ActionRun(
                    job=job.name,
                    slot=slot,
                    window_start=start,
                    window_end=end,
                    params=params,
                    rerun=rerun,
                    connection=connection,
                )
                return fn(run)

            try:
                result = await deadline.bound(lambda: tx.with_connection(call))
            except CronwrightError:
                raise
            except Exception:
                log.warning("job %s at %s: %s raised", job.name, iso(slot), target, exc_info=True)
                raise
            return rows(target, result)

        return step


def rows(target: str, result: object) -> int:
    """What the function returned, as the ledger's ``rows``: an int from 0, or None for 0.
    Anything else fails the run (its writes roll back): a permanent error."""
    if result is None:
        return 0
    if isinstance(result, int) and not isinstance(result, bool) and 0 <= result <= MAX_ROWS:
        return result
    raise JobFailed(
        f"{target} returned {reprlib.repr(result)} ({python_type(result)})",
        transient=False,
        error_class="python_action_result",
        hint="return the number of rows it touched (an int from 0), or None",
    )
