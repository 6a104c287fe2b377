"""The HTTP endpoints of ``serve`` and ``consume``, on aiohttp: ``GET /metrics``
(Prometheus text) and ``GET /healthz``; :func:`serve` is the one site set-up, which the
web console (:mod:`engine.app.console`) uses too.

Closed by default: it binds 127.0.0.1 unless ``--metrics-host`` says otherwise. aiohttp
parses requests within bounds (a request line or header of 8190 bytes, 128 headers) and
answers anything else with a 400; such a request is one line in the log at debug level,
never a traceback. aiohttp is imported when the endpoint opens, so a process without
one never loads it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.core.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: How much of a bad request's parse error the log line keeps.
_ERROR_CHARS = 200


class Exposition(Protocol):
    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        ...


class _RequestLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log: a request it could not parse (too long, too many headers,
    not HTTP) is the client's fault, answered with a 400 and logged as one line at debug
    level; anything else keeps aiohttp's level and traceback."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            reason = " ".join(str(exc).split())[:_ERROR_CHARS]
            self.logger.debug("bad request from %s: %s", args[0] if args else "?", reason)
            return
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


@asynccontextmanager
async def http_endpoint(
    metrics: Exposition, port: int, host: str = DEFAULT_HOST
) -> AsyncIterator[web.AppRunner]:
    """``GET /metrics`` and ``GET /healthz`` on ``host:port`` while the block runs
    (port 0: a free one, see :func:`bound_port`). ConfigError, one line, when the address
    cannot be bound (taken, not this machine's, not a host)."""
    from aiohttp import web

    async def metrics_text(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def close_after(_: web.Request, response: web.StreamResponse) -> None:
        response.force_close()  # one request per connection: nothing idles on the port

    app = web.Application()
    app.on_response_prepare.append(close_after)
    app.router.add_get("/metrics", metrics_text)
    app.router.add_get("/healthz", healthz)
    async with serve(
        app,
        port,
        host,
        what="metrics",
        hint="choose another --metrics-port, or a --metrics-host of this machine",
    ) as runner:
        yield runner


@asynccontextmanager
async def serve(
    app: web.Application, port: int, host: str, *, what: str, hint: str
) -> AsyncIterator[web.AppRunner]:
    """``app`` on ``host:port`` while the block runs, with the log above (a request it
    cannot parse is a 400 and a debug line) and no access log. ConfigError, one line
    (``cannot serve WHAT on HOST:PORT: reason; HINT``), when the address cannot be bound."""
    from aiohttp import web

    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        logger=cast(logging.Logger, _RequestLog(logging.getLogger("aiohttp.server"))),
    )
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except (OSError, OverflowError) as exc:  # taken, not ours; a port past 65535
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"cannot serve {what} on {host}:{port}: {reason}", hint=hint
            ) from None
        yield runner
    finally:
        await runner.cleanup()


def bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (for ``--metrics-port 0``)."""
    port: int = runner.addresses[0][1]
    return port
