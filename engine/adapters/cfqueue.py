"""A small async client for Cloudflare Queues' REST API, as an HTTP pull consumer uses it.

Endpoints (``{api}/accounts/{account}/queues...``): list queues (to resolve names to
ids), ``messages/pull``, ``messages/ack`` and ``messages`` (send, for the dead-letter
queue). Shapes follow Cloudflare's OpenAPI schema (``visibility_timeout_ms``; the prose
docs' examples say ``visibility_timeout``).

HTTP is ``urllib.request`` in ``asyncio.to_thread``: no new dependency, TLS verification
by default, and a consumer makes two or three calls per batch, so a thread per call is
cheap. Each call has a socket timeout and an overall deadline (the API short-polls: an
empty queue answers at once). 429, 5xx, connection errors and timeouts are transient
and retried a bounded number of times, here only.
The token goes into one request header and nowhere else: not into reprs, logs or errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import ConfigError, QueueError
from engine.runtime.messages import Body

log = logging.getLogger(__name__)

API_BASE = "https://api.cloudflare.com/client/v4"
MAX_DELAY_SECONDS = 43_200  # Cloudflare's cap on a retry's delay_seconds
_MAX_PAGES = 100
_AUTH_HINT = "check CLOUDFLARE_API_TOKEN: it needs Account > Queues > Edit (queues read and write)"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Settings:
    account_id: str
    token: str = field(repr=False)
    base_url: str = API_BASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """``CLOUDFLARE_API_TOKEN``, ``CLOUDFLARE_ACCOUNT_ID`` and optionally
        ``CLOUDFLARE_API_BASE_URL``."""
        token = environ.get("CLOUDFLARE_API_TOKEN", "").strip()
        account = environ.get("CLOUDFLARE_ACCOUNT_ID", "").strip()
        pairs = (("CLOUDFLARE_ACCOUNT_ID", account), ("CLOUDFLARE_API_TOKEN", token))
        unset = [name for name, value in pairs if not value]
        if unset:
            raise ConfigError(
                f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set",
                hint="a pull consumer needs an API token with Queues Edit and its account id",
            )
        base = environ.get("CLOUDFLARE_API_BASE_URL", "").strip() or API_BASE
        return cls(account_id=account, token=token, base_url=base.rstrip("/"))


@dataclass(frozen=True, kw_only=True)
class Pulled:
    """One leased message. ``body`` is decoded (see :func:`decode_body`)."""

    id: str
    lease_id: str
    attempts: int
    body: Body
    timestamp_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class AckResult:
    ack_count: int
    retry_count: int
    warnings: Mapping[str, str]


def decode_body(body: object, metadata: object) -> Body:
    """A pulled body as the executor takes it. ``CF-Content-Type`` ``json`` (the default)
    and ``bytes`` arrive base64-encoded, ``text`` as is. A json body that is not valid
    base64 is taken as plain JSON text (a JSON object starts with ``{``, outside base64's
    alphabet, so the two cannot be confused). ``v8`` cannot be decoded outside Workers:
    it is passed on and the executor dead-letters it as not JSON."""
    meta = metadata if isinstance(metadata, Mapping) else {}
    kind = str(meta.get("CF-Content-Type") or "json")
    if isinstance(body, Mapping):
        return body
    if not isinstance(body, str):
        return json.dumps(body)
    if kind in ("json", "bytes"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body
    if kind != "text":
        log.warning("message body has content type %r, which only Workers can decode", kind)
    return body


@dataclass(frozen=True)
class _Failed:
    error: QueueError
    retry_after: float | None = None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    data: bytes


def _http(req: urllib.request.Request, timeout: float) -> _Response:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return _Response(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return _Response(exc.code, dict((exc.headers or {}).items()), exc.read())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class QueuesClient:
    """Cloudflare Queues over REST. Holds no connections: nothing to close."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._s = settings
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"QueuesClient(account={self._s.account_id!r}, base_url={self._s.base_url!r})"

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
            raise self._bad("POST", path, "result.messages is not a list")
        out = []
        for m in raw:
            if not isinstance(m, Mapping) or not m.get("id") or not m.get("lease_id"):
                raise self._bad("POST", path, "a message has no id or lease_id")
            attempts = m.get("attempts")
            out.append(
                Pulled(
                    id=str(m["id"]),
                    lease_id=str(m["lease_id"]),
                    # Counted from 1, like a Worker's message.attempts.
                    attempts=max(1, attempts if isinstance(attempts, int) else 1),
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

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        payload: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """One API call with bounded retries; returns the success envelope."""
        account = urllib.parse.quote(self._s.account_id, safe="")
        url = f"{self._s.base_url}/accounts/{account}{path}"
        url += f"?{urllib.parse.urlencode(query)}" if query else ""
        data = None if payload is None else json.dumps(payload).encode()
        attempt = 1
        while True:
            got = await self._once(method, path, url, data)
            if not isinstance(got, _Failed):
                return got
            if not got.error.transient or attempt >= self._attempts:
                raise got.error
            delay = min(self._max_backoff, got.retry_after or self._backoff * 2 ** (attempt - 1))
            log.warning(
                "%s; retrying in %gs (attempt %d of %d)", got.error, delay, attempt, self._attempts
            )
            await self._sleep(delay)
            attempt += 1

    async def _once(
        self, method: str, path: str, url: str, data: bytes | None
    ) -> Mapping[str, Any] | _Failed:
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        # Unredirected: a redirect must not carry the token to another host.
        req.add_unredirected_header("Authorization", f"Bearer {self._s.token}")
        try:
            resp = await asyncio.wait_for(
                asyncio.to_thread(_http, req, self._timeout), self._timeout + 1
            )
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            text = f"Cloudflare API {method} {path}: {_describe(reason, self._timeout)}"
            return _Failed(
                QueueError(self._scrub(text), transient=True, error_class="cloudflare_connection")
            )
        env = _envelope(resp.data)
        if 200 <= resp.status < 300 and env.get("success") is not False:
            return env
        retry_after = _retry_after(resp.headers) if resp.status == 429 else None
        return _Failed(self._error(method, path, resp.status, env), retry_after)

    def _error(self, method: str, path: str, status: int, env: Mapping[str, Any]) -> QueueError:
        raw = env.get("errors")
        errors = raw if isinstance(raw, list) else []
        detail = "; ".join(
            f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, Mapping)
        )
        text = f"Cloudflare API {method} {path}: HTTP {status}"
        text = self._scrub(text + (f" ({detail[:300]})" if detail else ""))
        if status in (401, 403):
            return QueueError(text, transient=False, error_class="cloudflare_auth", hint=_AUTH_HINT)
        if status == 429:
            return QueueError(text, transient=True, error_class="cloudflare_rate_limited")
        if status >= 500:
            return QueueError(text, transient=True, error_class="cloudflare_unavailable")
        return QueueError(text, transient=False, error_class="cloudflare_api_error")

    def _bad(self, method: str, path: str, problem: str) -> QueueError:
        return QueueError(
            f"Cloudflare API {method} {path}: unexpected response: {problem}",
            transient=False,
            error_class="cloudflare_bad_response",
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._s.token, "***") if self._s.token else text


def _envelope(data: bytes) -> Mapping[str, Any]:
    try:
        env = json.loads(data or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"success": False, "errors": [{"code": None, "message": "response is not JSON"}]}
    return env if isinstance(env, Mapping) else {"success": False, "errors": []}


def _describe(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g}s"
    return f"connection failed ({reason})"
