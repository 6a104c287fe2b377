"""Sending a notice: notifications through Apprise (one URL per service: Slack, email,
``json://``, dozens more; nothing here is written per service), healthcheck pings over
HTTP (httpx; the URL styles are :func:`engine.runtime.pings.request`).

The only module that imports Apprise (it costs about 0.2 s to import, so only a service
with notifications loads it). ``${NAME}`` in a URL is replaced from the environment here,
just before the send; the expanded URL is never logged, and the values it takes from the
environment are scrubbed from every error text (the process also registers them with
its log scrubbing, :mod:`engine.app.logsecrets`).

Apprise is synchronous: each notification is sent in a thread of this sender's own pool
(never the event loop's default one, which other work shares), with Apprise's socket
timeouts set to the send's timeout and a wait bounded by it. Apprise's own log lines of a
send are folded into the error it raises (debug lines still reach the debug log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import apprise
import httpx

from engine.adapters.cfqueue import transport_reason
from engine.core import envurl
from engine.core.errors import ConfigError, NoticeError
from engine.core.scrub import scrub
from engine.runtime import pings
from engine.runtime.notices import Notice

log = logging.getLogger(__name__)

_THREAD_PREFIX = "cronwright-notify"
_ASSET = apprise.AppriseAsset(storage_mode="memory")  # nothing written to disk


class _Capture(logging.Filter):
    """On Apprise's logger: in a sending thread, its warnings and errors are kept for the
    send's error and its info lines dropped (a line per send is noise); elsewhere, and
    debug lines everywhere, pass."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        lines: list[str] | None = getattr(self.local, "lines", None)
        if lines is None:
            return True
        if record.levelno >= logging.WARNING:
            lines.append(" ".join(record.getMessage().split()))
        return record.levelno <= logging.DEBUG


_capture = _Capture()
_APPRISE_LOG = logging.getLogger("apprise")


def _notify(url: str, title: str, body: str, level: str, timeout: float) -> None:
    """One Apprise notification (in a sending thread); a NoticeError when it fails."""
    lines: list[str] = []
    _capture.local.lines = lines
    try:
        plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
        if plugin is None:
            raise NoticeError(
                "Apprise does not know this URL" + (f": {'; '.join(lines)}" if lines else ""),
                permanent=True,
            )
        plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
        ok = plugin.notify(body=body, title=title, notify_type=apprise.NotifyType(level))
    finally:
        _capture.local.lines = None
    if not ok:
        raise NoticeError("; ".join(lines) or "not delivered")


class NoticeSender:
    """Sends notices; at most ``workers`` notifications at once (:meth:`room`)."""

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        timeout: float = 10.0,
        workers: int = 4,
        secrets: Iterable[str] = (),
    ) -> None:
        self._environ = environ
        self._timeout = timeout
        self._workers = workers
        self._secrets = tuple(secrets)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=_THREAD_PREFIX)
        self._busy = 0  # threads still sending (one may outlive a timed-out wait)
        self._lock = threading.Lock()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=True)
        if _capture not in _APPRISE_LOG.filters:
            _APPRISE_LOG.addFilter(_capture)

    async def __aenter__(self) -> NoticeSender:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self._http.aclose()

    def room(self) -> int:
        """How many sends may start now."""
        with self._lock:
            return self._workers - self._busy

    def problems(self, notify: Iterable[str], healthchecks: Iterable[str]) -> list[tuple[str, str]]:
        """(URL, why) for each URL that cannot be sent to: a variable it names is not set,
        or (a notification's) Apprise does not know it. Nothing is sent."""
        out = []
        for url in dict.fromkeys(notify):
            try:
                known = apprise.Apprise.instantiate(self._expand(url), asset=_ASSET)
            except NoticeError as err:
                out.append((url, str(err)))
            else:
                if known is None:
                    out.append((url, "Apprise does not know this URL; see its list of services"))
        for url in dict.fromkeys(healthchecks):
            try:
                self._expand(url)
            except NoticeError as err:
                out.append((url, str(err)))
        return out

    def _expand(self, url: str) -> str:
        try:
            return envurl.expand(url, self._environ)
        except ConfigError as err:
            raise NoticeError(str(err), permanent=True) from None

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def send(self, notice: Notice) -> None:
        """Deliver ``notice``, or raise NoticeError (its text scrubbed of secrets)."""
        try:
            if notice.ordered:
                await self._ping(notice)
            else:
                await self._notification(notice)
        except NoticeError as err:
            raise NoticeError(self._clean(err.message), permanent=err.permanent) from None

    async def _notification(self, notice: Notice) -> None:
        url = self._expand(notice.target)
        title, body = self._clean(notice.title), self._clean(notice.body)
        with self._lock:
            self._busy += 1
        try:
            future = self._pool.submit(_notify, url, title, body, notice.level, self._timeout)
        except RuntimeError:  # the pool is shut down: the service is stopping
            self._done(None)
            raise NoticeError("the service is stopping") from None
        future.add_done_callback(self._done)
        try:
            # Apprise's socket timeouts bound the thread; this bounds the wait for it.
            await asyncio.wait_for(asyncio.wrap_future(future), self._timeout * 2 + 1)
        except TimeoutError:
            raise NoticeError(f"timed out after {self._timeout * 2 + 1:g} s") from None

    def _done(self, _: Future[None] | None) -> None:
        with self._lock:
            self._busy -= 1

    async def _ping(self, notice: Notice) -> None:
        req = pings.request(self._expand(notice.target), notice.kind, self._clean(notice.body))
        try:
            resp = await self._http.request(req.method, req.url, content=req.body)
        except httpx.TimeoutException:
            raise NoticeError(f"timed out after {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise NoticeError(f"{type(exc).__name__}: {transport_reason(exc)}") from None
        if not 200 <= resp.status_code < 300:
            raise NoticeError(f"HTTP {resp.status_code} {resp.reason_phrase}".strip())
