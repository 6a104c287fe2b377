"""A small async client for Cloudflare Queues' REST API: what an HTTP pull consumer and
the reconciler use.

Endpoints (``{api}/accounts/{account}/queues...``): list queues (to resolve names to
ids, paged), ``messages/pull``, ``messages/ack``, ``messages`` (send one, for the
dead-letter queue) and ``messages/batch`` (send several, as the Worker's ``sendBatch``).
Shapes follow Cloudflare's OpenAPI schema (``visibility_timeout_ms``; the prose docs'
examples say ``visibility_timeout``).

HTTP is one ``httpx.AsyncClient`` per QueuesClient: a connection pool, TLS verification,
a timeout on every phase, no redirects (a redirect must not carry the token elsewhere).
The caller opens and closes it: ``async with QueuesClient(settings) as client``. 429, 5xx,
connection errors and timeouts are transient and retried by the shared helper
(:mod:`engine.adapters.retrying`), honouring Retry-After. The token goes into one request
header and nowhere else: not into reprs, logs or errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from engine.adapters.cfconfig import API_BASE, Settings
from engine.adapters.cfmessages import AckResult, Pulled, decode_body
from engine.adapters.retrying import Backoff, retrying
from engine.core.errors import ConfigError, QueueError
from engine.core.scrub import scrub
from engine.core.times import Sleep

__all__ = ["API_BASE", "AckResult", "Pulled", "QueuesClient", "Settings", "decode_body"]

log = logging.getLogger(__name__)

MAX_DELAY_SECONDS = 43_200  # Cloudflare's cap on a retry's delay_seconds
MAX_BATCH = 100  # Cloudflare's cap on messages per batch send
_MAX_PAGES = 100
_AUTH_HINT = "check CLOUDFLARE_API_TOKEN: it needs Account > Queues > Edit (queues read and write)"
# 400s that are about the token, not the request: 6003 "Invalid request headers" with
# 6111 "Invalid format for Authorization header" (or 6100/6101/6102/6103 for its parts).
_AUTH_CODES = frozenset({6003, 6100, 6101, 6102, 6103, 6111, 9106, 9109, 10000})
_QUEUE_NOT_FOUND, _BAD_QUEUE_ID = 10104, 10107


class QueuesClient:
    """Cloudflare Queues over REST; an async context manager that owns its HTTP pool."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_connections: int = 20,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._s = settings
        self._timeout = timeout
        self._backoff = Backoff(attempts=attempts, initial=backoff, maximum=max_backoff)
        self._limits = httpx.Limits(max_connections=max_connections)
        self._sleep = sleep
        self._http: httpx.AsyncClient | None = None
        #: Each queue's backlog as the last pull reported it (None: not reported).
        self.backlog: dict[str, int | None] = {}

    def __repr__(self) -> str:
        return f"QueuesClient(account={self._s.account_id!r}, base_url={self._s.base_url!r})"

    async def __aenter__(self) -> QueuesClient:
        self._http = httpx.AsyncClient(
            base_url=f"{self._s.base_url}/accounts/{quote(self._s.account_id, safe='')}",
            headers={"Authorization": f"Bearer {self._s.token}", "Accept": "application/json"},
            timeout=httpx.Timeout(self._timeout),
            limits=self._limits,
            follow_redirects=False,
            trust_env=False,
        )
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def queue_ids(self, names: Sequence[str]) -> dict[str, str]:
        """Queue name -> queue id, for every name; ConfigError names the missing ones."""
        found: dict[str, str] = {}
        query: list[tuple[str, str]] = [("name", n) for n in sorted(set(names))]
        for page in range(1, _MAX_PAGES + 1):
            env = await self._call("GET", "/queues", query=[("page", str(page)), *query])
            for q in env.get("result") or []:
                if isinstance(q, Mapping) and q.get("queue_name") in names:
                    found[str(q["queue_name"])] = str(q["queue_id"])
            info = env.get("result_info") or {}
            try:
                more = int(info["page"]) * int(info["per_page"]) < int(info["total_count"])
            except (KeyError, TypeError, ValueError):
                more = False
            if not more or len(found) == len(set(names)):
                break
        missing = sorted(set(names) - set(found))
        if missing:
            raise ConfigError(
                f"queue {', '.join(missing)} not found in account {self._s.account_id}",
                hint="run generated/preflight.sh (wrangler queues create ...)",
            )
        return found

    async def pull(
        self, queue_id: str, *, batch_size: int, visibility_timeout_ms: int
    ) -> list[Pulled]:
        """Lease up to ``batch_size`` messages for ``visibility_timeout_ms``."""
        path = f"/queues/{queue_id}/messages/pull"
        payload = {"batch_size": batch_size, "visibility_timeout_ms": visibility_timeout_ms}
        result = (await self._call("POST", path, payload=payload)).get("result")
        raw = result.get("messages") if isinstance(result, Mapping) else None
        if not isinstance(raw, list):
            raise _bad("POST", path, "result.messages is not a list")
        backlog = result.get("message_backlog_count") if isinstance(result, Mapping) else None
        self.backlog[queue_id] = whole(backlog)
        out = []
        for m in raw:
            if not isinstance(m, Mapping) or not m.get("id") or not m.get("lease_id"):
                raise _bad("POST", path, "a message has no id or lease_id")
            attempts = m.get("attempts")
            out.append(
                Pulled(
                    id=str(m["id"]),
                    lease_id=str(m["lease_id"]),
                    # Counted from 1, like a Worker's message.attempts.
                    attempts=max(1, whole(attempts) or 1),
                    body=decode_body(m.get("body"), m.get("metadata")),
                    timestamp_ms=m.get("timestamp_ms"),
                )
            )
        return out

    async def ack(
        self, queue_id: str, *, acks: Sequence[str], retries: Sequence[tuple[str, int]]
    ) -> AckResult:
        """Acknowledge leases and hand others back with a delay, in one call."""
        payload = {
            "acks": [{"lease_id": lease} for lease in acks],
            "retries": [
                {"lease_id": lease, "delay_seconds": max(0, min(delay, MAX_DELAY_SECONDS))}
                for lease, delay in retries
            ],
        }
        env = await self._call("POST", f"/queues/{queue_id}/messages/ack", payload=payload)
        result = env.get("result")
        result = result if isinstance(result, Mapping) else {}
        warnings = result.get("warnings")
        warnings = warnings if isinstance(warnings, Mapping) else {}
        return AckResult(
            ack_count=int(result.get("ackCount") or 0),
            retry_count=int(result.get("retryCount") or 0),
            warnings={str(k): str(v) for k, v in warnings.items()},
        )

    async def send(self, queue_id: str, body: Any) -> None:
        """Send one JSON message (``content_type: json``)."""
        payload = {"body": body, "content_type": "json"}
        await self._call("POST", f"/queues/{queue_id}/messages", payload=payload)

    async def send_batch(self, queue_id: str, bodies: Sequence[Any]) -> None:
        """Send JSON messages as the Worker's ``sendBatch`` does, in calls of at most 100."""
        path = f"/queues/{queue_id}/messages/batch"
        for i in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[i : i + MAX_BATCH]
            messages = [{"body": b, "content_type": "json"} for b in chunk]
            await self._call("POST", path, payload={"messages": messages})

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        payload: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """One API call with bounded transport retries; returns the success envelope."""
        return await retrying(
            lambda: self._once(method, path, query, payload), self._backoff, self._sleep
        )

    async def _once(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        payload: Mapping[str, Any] | None,
    ) -> Mapping[str, Any]:
        if self._http is None:
            raise ConfigError("QueuesClient is not open", hint="use it as `async with client:`")
        try:
            resp = await self._http.request(method, path, params=list(query), json=payload)
        except httpx.TimeoutException as exc:
            raise self._transport(method, path, f"timed out after {self._timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise self._transport(
                method, path, f"connection failed ({transport_reason(exc)})"
            ) from exc
        env = _envelope(resp.content)
        if 200 <= resp.status_code < 300 and env.get("success") is not False:
            return env
        raise self._error(method, path, resp, env)

    def _transport(self, method: str, path: str, problem: str) -> QueueError:
        text = self._scrub(f"Cloudflare API {method} {path}: {problem}")
        return QueueError(text, transient=True, error_class="cloudflare_connection")

    def _error(
        self, method: str, path: str, resp: httpx.Response, env: Mapping[str, Any]
    ) -> QueueError:
        status = resp.status_code
        raw = env.get("errors")
        errors = [e for e in raw if isinstance(e, Mapping)] if isinstance(raw, list) else []
        codes = {e.get("code") for e in errors}
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        text = f"Cloudflare API {method} {path}: HTTP {status}"
        text = self._scrub(text + (f" ({detail[:300]})" if detail else ""))
        if status in (401, 403) or (status == 400 and codes & _AUTH_CODES):
            return QueueError(text, transient=False, error_class="cloudflare_auth", hint=_AUTH_HINT)
        if codes & {_QUEUE_NOT_FOUND, _BAD_QUEUE_ID}:
            return QueueError(
                text,
                transient=False,
                error_class="cloudflare_queue_not_found",
                hint="run generated/preflight.sh, and check the queue's name in jobs.yaml",
            )
        if status == 429 or status >= 500:
            after = _retry_after(resp.headers.get("retry-after"))
            kind = "cloudflare_rate_limited" if status == 429 else "cloudflare_unavailable"
            return QueueError(text, transient=True, error_class=kind, retry_after=after)
        return QueueError(text, transient=False, error_class="cloudflare_api_error")

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._s.token,))


def whole(value: object) -> int | None:
    """A count the API sent: a finite number as an int, anything else (absent, a string,
    a boolean, NaN or infinity, which JSON readers accept) None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) else None


def _bad(method: str, path: str, problem: str) -> QueueError:
    return QueueError(
        f"Cloudflare API {method} {path}: unexpected response: {problem}",
        transient=False,
        error_class="cloudflare_bad_response",
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our backoff


def transport_reason(exc: BaseException) -> str:
    """The innermost cause: '[Errno 111] Connection refused', not httpx's wrapper text."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if isinstance(exc, OSError) and exc.errno:
        return f"[Errno {exc.errno}] {os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__


def _envelope(data: bytes) -> Mapping[str, Any]:
    try:
        env = json.loads(data or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"success": False, "errors": [{"code": None, "message": "response is not JSON"}]}
    return env if isinstance(env, Mapping) else {"success": False, "errors": []}
