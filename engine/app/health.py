"""How a long-running process reports trouble: quietly. Every background loop and worker
of ``serve`` and ``consume`` reports its failures here instead of logging each one.

- While the database (or the queue's API) is away, each distinct error is logged once per
  ``interval`` with how long the outage has lasted ("database unreachable for 45 s:
  connection refused; retrying"), and one line says when it is back.
- Any other failure of a loop (a bad row, a bug) is logged once per interval per loop
  and distinct message, with its class; the traceback goes to the debug log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engine.core.errors import (
    CronwrightError,
    DatabaseError,
    JobFailed,
    QueueError,
    StorageError,
)

log = logging.getLogger("engine.app")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def source(err: BaseException) -> str:
    """What a transient error says is away."""
    if isinstance(err, DatabaseError):
        return "database"
    if isinstance(err, QueueError):
        return "Cloudflare Queues API"
    return "R2" if isinstance(err, StorageError) else "a dependency"


class Health:
    def __init__(
        self, *, interval: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._outages: dict[str, float] = {}  # what is away, since when
        self._said: dict[tuple[str, str], float] = {}

    def _due(self, key: tuple[str, str]) -> bool:
        now = self._monotonic()
        last = self._said.get(key)
        if last is not None and now - last < self._interval:
            return False
        self._said[key] = now
        return True

    def failed(self, where: str, err: BaseException) -> None:
        """``where`` ("claim", "reconcile pass", ...) failed with ``err``."""
        text = _one_line(err)
        if isinstance(err, JobFailed) and err.transient:
            away = source(err)
            since = self._outages.setdefault(away, self._monotonic())
            if self._due((away, text)):
                lasted = self._monotonic() - since
                log.warning("%s unreachable for %.0f s: %s; retrying", away, lasted, text)
            return
        log.debug("%s failed", where, exc_info=err)
        if self._due((where, text)):
            what = text if isinstance(err, CronwrightError) else f"{type(err).__name__}: {text}"
            log.error("%s failed: %s; going on", where, what)

    def ok(self, away: str = "database") -> None:
        """A call that reaches ``away`` went through."""
        since = self._outages.pop(away, None)
        if since is not None:
            self._said = {k: v for k, v in self._said.items() if k[0] != away}
            log.warning("%s reachable again after %.0f s", away, self._monotonic() - since)
