"""The console's aiohttp application: its routes, the sign-in, the checks every action
passes (a token configured, a session, the form's CSRF token, a same-origin request) and
the answers to bad input (400/404 with the reason, never a traceback).

Routes:
- ``GET /``: the slot grid with the range picker; ``GET /grid``: the grid alone, an HTML
  fragment the page's script polls (with an ETag: an unchanged grid is a 304);
- ``GET /jobs/{job}``, ``GET /jobs/{job}/slots/{slot}``: a job's page, a slot's page;
- ``POST /jobs/{job}/pause``, ``.../resume``, ``/jobs/{job}/slots/{slot}/run``,
  ``.../rerun``, ``/dead-letters/{id}/replay``: the actions;
- ``GET|POST /login``, ``POST /logout``; ``GET /static/{name}``; ``GET /healthz``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.app.console import acting, pages, ranges
from engine.app.console.pages import CONSOLE, Console, Forbidden, message
from engine.app.console.views import NotFound
from engine.core.errors import CronwrightError
from engine.core.scrub import scrub

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_HEADERS = {
    # Inline style attributes place the grid's cells; no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'"
    " 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make a form's Origin "null"
}


def build(console: Console) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[CONSOLE] = console
    app.on_response_prepare.append(_security_headers)
    r = app.router
    r.add_get("/", pages.index)
    r.add_get("/grid", pages.fragment)
    r.add_get("/jobs/{job}", pages.job_page)
    r.add_get("/jobs/{job}/slots/{slot}", pages.slot_page)
    r.add_post("/jobs/{job}/pause", acting.pause)
    r.add_post("/jobs/{job}/resume", acting.resume)
    r.add_post("/jobs/{job}/slots/{slot}/run", acting.run_slot)
    r.add_post("/jobs/{job}/slots/{slot}/rerun", acting.rerun_slot)
    r.add_post("/dead-letters/{id}/replay", acting.replay)
    r.add_get("/login", acting.login_form)
    r.add_post("/login", acting.login)
    r.add_post("/logout", acting.logout)
    r.add_get("/static/{name}", pages.static)
    r.add_get("/healthz", pages.healthz)
    return app


async def _security_headers(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad input is a page with its reason (400, 403, 404); a database or transport that
    is away a 503; anything else a 500 whose details go to the log only."""
    console = request.app[CONSOLE]
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ranges.BadQuery as exc:
        return message(request, 400, "Bad request", str(exc))
    except NotFound as exc:
        return message(request, 404, "Not found", str(exc))
    except Forbidden as exc:
        return message(request, 403, "Forbidden", str(exc))
    except CronwrightError as exc:
        status = 503 if getattr(exc, "transient", None) is not None else 400
        text = scrub(str(exc), console.secrets)
        return message(request, status, "Unavailable" if status == 503 else "Refused", text)
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        return message(request, 500, "Internal error", "the console's log has the details")
