"""Healthcheck pings: a job's ``healthcheck:`` URL is told when each attempt starts and
how its slot ended, the way Healthchecks.io and Cronitor expect.

- **Healthchecks.io** style (any host): ``URL/start`` when an attempt starts, ``URL`` on
  success, ``URL/fail`` on failure; a POST whose body (the job, the slot, the reason) the
  service keeps as the ping's log.
- **Cronitor** style (a ``cronitor.link`` host): ``URL?state=run``, ``state=complete``,
  ``state=fail``, with ``message=`` carrying the same text.

Success is a slot whose effect is in place (``succeeded``, or a ``duplicate`` delivery of
it), or one that needs nothing more (``paused``, ``superseded``); failure is a dead
letter. A transient failure pings nothing: the retry's ``/start`` follows, and a
healthcheck whose run is late past its grace says so by itself.

The executor calls :class:`Pings` (its :class:`~engine.runtime.executor.RunWatch`) on
its own path, so nothing there waits: the pings wait in memory until the notifier's
next pass records them in the outbox, which sends them in order per URL.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine.core.model import Job, Manifest
from engine.core.times import iso
from engine.runtime.notices import Kind, Notice, reason
from engine.runtime.outcome import Outcome

#: Pings kept in memory at most (the outbox takes them every pass); past it the oldest go.
MAX_PENDING = 10_000
#: Cronitor's limit on a telemetry message.
CRONITOR_MESSAGE = 2000
_SUCCESS = frozenset({"succeeded", "duplicate", "paused", "superseded"})


@dataclass(frozen=True)
class Request:
    method: Literal["GET", "POST"]
    url: str
    body: str | None


def request(url: str, kind: Kind, text: str) -> Request:
    """The HTTP request of a ping of ``kind`` to the (expanded) healthcheck ``url``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "cronitor.link" or host.endswith(".cronitor.link"):
        state = {"ping_start": "run", "ping_success": "complete"}.get(kind, "fail")
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        query = [(k, v) for k, v in query if k not in ("state", "message")]
        query += [("state", state), ("message", text[:CRONITOR_MESSAGE])]
        return Request("GET", urlunsplit(parts._replace(query=urlencode(query))), None)
    suffix = {"ping_start": "/start", "ping_success": ""}.get(kind, "/fail")
    path = parts.path.rstrip("/") + suffix if suffix else parts.path
    return Request("POST", urlunsplit(parts._replace(path=path)), text)


class Pings:
    """Each attempt of a job with a healthcheck, as pings waiting for the outbox.
    ``wake`` is called when one is added (the notifier's sender wakes up)."""

    def __init__(self, manifest: Manifest, *, wake: Callable[[], None] = lambda: None) -> None:
        self._urls = {j.name: j.healthcheck for j in manifest.jobs if j.healthcheck}
        self._wake = wake
        self._pending: deque[Notice] = deque(maxlen=MAX_PENDING)
        self.dropped = 0  # pings lost to the cap (the outbox was unreachable that long)

    def __bool__(self) -> bool:
        return bool(self._urls)

    def started(self, job: Job, slot: datetime, attempt: int, message_id: str) -> None:
        self._add(job, slot, attempt, message_id, "ping_start", "started")

    def finished(
        self, job: Job, slot: datetime, attempt: int, message_id: str, outcome: Outcome
    ) -> None:
        if outcome.status in _SUCCESS:
            self._add(job, slot, attempt, message_id, "ping_success", outcome.status)
        elif outcome.status == "dead_lettered":
            why = f"dead-lettered: {reason(outcome.reason or '')} ({outcome.error_class})"
            self._add(job, slot, attempt, message_id, "ping_fail", why)

    def _add(
        self, job: Job, slot: datetime, attempt: int, message_id: str, kind: Kind, what: str
    ) -> None:
        url = self._urls.get(job.name)
        if url is None:
            return
        if len(self._pending) == MAX_PENDING:
            self.dropped += 1
        text = f"cronwright: {job.name}, slot {iso(slot)}, attempt {attempt}: {what}"
        self._pending.append(
            Notice(
                kind=kind,
                subject=f"{job.name} {iso(slot)} {message_id} #{attempt}",
                target=url,
                job=job.name,
                slot=slot,
                title=text,
                body=text,
            )
        )
        self._wake()

    def take(self) -> list[Notice]:
        """The pings waiting, oldest first; they are the caller's from now on."""
        out = list(self._pending)
        self._pending.clear()
        return out

    def put_back(self, pings: list[Notice]) -> None:
        """Pings the caller could not record, to try again first next time (the newest
        go when that passes the cap)."""
        self.dropped += max(0, len(self._pending) + len(pings) - MAX_PENDING)
        self._pending.extendleft(reversed(pings))
