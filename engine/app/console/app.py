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

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from markupsafe import Markup

from engine.app.console import actions, auth, ranges, views
from engine.app.console.views import Context, NotFound
from engine.core.errors import CronwrightError
from engine.core.scrub import scrub
from engine.core.times import iso
from engine.runtime import scheduling

if TYPE_CHECKING:
    from engine.adapters.pg import Database

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
MAX_BODY = 64 * 1024
_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
_HEADERS = {
    # Inline style attributes place the grid's cells; no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'"
    " 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class Forbidden(Exception):
    """An action refused: answered 403 with this reason, nothing changed."""


@dataclass(frozen=True)
class Console:
    ctx: Context
    db: Database
    keys: auth.Keys | None  # None: no token, read-only
    pages: jinja2.Environment
    static: Mapping[str, bytes]
    refresh_seconds: float
    secrets: tuple[str, ...]  # scrubbed from every error shown

    def session(self, request: web.Request) -> auth.Session | None:
        if self.keys is None:
            return None
        return self.keys.session(request.cookies.get(auth.SESSION_COOKIE), int(time.time()))


CONSOLE = web.AppKey("console", Console)


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engine.app.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = lambda t: iso(t) if t is not None else ""
    env.filters["path"] = lambda s: quote(str(s), safe="")
    env.globals["STATUSES"] = scheduling.STATUSES
    env.globals["NOTES"] = actions.NOTES
    return env


def static_files() -> dict[str, bytes]:
    folder = resources.files("engine.app.console") / "static"
    return {name: (folder / name).read_bytes() for name in _STATIC}


def build(console: Console) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[CONSOLE] = console
    app.on_response_prepare.append(_security_headers)
    r = app.router
    r.add_get("/", index)
    r.add_get("/grid", fragment)
    r.add_get("/jobs/{job}", job_page)
    r.add_get("/jobs/{job}/slots/{slot}", slot_page)
    r.add_post("/jobs/{job}/pause", pause)
    r.add_post("/jobs/{job}/resume", resume)
    r.add_post("/jobs/{job}/slots/{slot}/run", run_slot)
    r.add_post("/jobs/{job}/slots/{slot}/rerun", rerun_slot)
    r.add_post("/dead-letters/{id}/replay", replay)
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/static/{name}", static)
    r.add_get("/healthz", healthz)
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
        return _message(request, 400, "Bad request", str(exc))
    except NotFound as exc:
        return _message(request, 404, "Not found", str(exc))
    except Forbidden as exc:
        return _message(request, 403, "Forbidden", str(exc))
    except CronwrightError as exc:
        status = 503 if getattr(exc, "transient", None) is not None else 400
        text = scrub(str(exc), console.secrets)
        return _message(request, status, "Unavailable" if status == 503 else "Refused", text)
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        return _message(request, 500, "Internal error", "the console's log has the details")


def _message(request: web.Request, status: int, title: str, text: str) -> web.Response:
    return _page(request, "message.html", status=status, title=title, text=text)


def _page(request: web.Request, name: str, *, status: int = 200, **values: Any) -> web.Response:
    console = request.app[CONSOLE]
    session = console.session(request)
    keys = console.keys

    def form_token(action: str) -> str:
        return keys.form_token(session, action) if keys and session else ""

    manifest = console.ctx.manifest
    flag = scheduling.cron_enabled(manifest, console.ctx.environ)
    html = console.pages.get_template(name).render(
        project=manifest.name,
        transport=console.ctx.transport,
        cron_flag=(manifest.worker.cron_flag, flag),
        read_only=keys is None,
        session=session,
        form_token=form_token,
        refresh_seconds=console.refresh_seconds,
        note=_note(request),
        **values,
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.enable_compression()
    return response


def _note(request: web.Request) -> str | None:
    code = request.query.get("done", "")
    return actions.NOTES.get(code)


def _query(request: web.Request) -> dict[str, list[str]]:
    return {k: request.query.getall(k) for k in request.query}


# --- pages ------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx = console.ctx
    jobs = ctx.manifest.jobs
    try:
        rng = ranges.parse(_query(request), ctx.manifest, ctx.clock())
        view = await views.grid_view(console.db, ctx, rng)
    except ranges.BadQuery as exc:
        return _page(request, "grid.html", status=400, view=None, error=str(exc), jobs=jobs)
    html, etag = _grid(console, view)
    return _page(
        request, "grid.html", view=view, error=None, jobs=jobs, grid=Markup(html), etag=etag
    )


def _grid(console: Console, view: views.GridView) -> tuple[str, str]:
    """The grid's HTML (the fragment the page polls) and its ETag."""
    html = console.pages.get_template("_grid.html").render(view=view)
    return html, '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"'


async def fragment(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx = console.ctx
    try:
        rng = ranges.parse(_query(request), ctx.manifest, ctx.clock())
        view = await views.grid_view(console.db, ctx, rng)
    except ranges.BadQuery as exc:
        return web.Response(status=400, text=f"{exc}\n")
    html, etag = _grid(console, view)
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    response = web.Response(text=html, content_type="text/html", headers={"ETag": etag})
    response.enable_compression()
    return response


async def job_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    job = views.find_job(console.ctx.manifest, request.match_info["job"])
    view = await views.job_view(console.db, console.ctx, job)
    return _page(request, "job.html", view=view)


async def slot_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx = console.ctx
    job = views.find_job(ctx.manifest, request.match_info["job"])
    slot = views.parse_slot(job, request.match_info["slot"], ctx.clock())
    view = await views.slot_view(console.db, ctx, job, slot)
    return _page(request, "slot.html", view=view, job=job)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = request.app[CONSOLE].static.get(name)
    if body is None:
        raise NotFound(f"no file {name!r}")
    return web.Response(
        body=body,
        content_type=_STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


# --- signing in -------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


def _login_page(
    request: web.Request, *, status: int = 200, error: str | None = None
) -> web.Response:
    keys = request.app[CONSOLE].keys
    if keys is None:
        return _page(request, "login.html", status=status, login_token="", error=error)
    cookie = keys.login_cookie(int(time.time()))
    response = _page(
        request, "login.html", status=status, login_token=keys.login_token(cookie), error=error
    )
    _set_cookie(request, response, auth.LOGIN_COOKIE, cookie, auth.LOGIN_SECONDS)
    return response


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, seconds: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


async def login(request: web.Request) -> web.StreamResponse:
    keys = request.app[CONSOLE].keys
    if keys is None:
        raise Forbidden(_read_only())
    _same_origin(request)
    form = await request.post()
    now = int(time.time())
    token, name, csrf = (str(form.get(k, "")) for k in ("token", "name", "csrf"))
    if not keys.login_ok(request.cookies.get(auth.LOGIN_COOKIE), csrf, now):
        return _login_page(request, status=403, error="the sign-in form expired: try again")
    if not keys.token_matches(token):
        log.warning("console: a sign-in with a wrong token from %s", request.remote)
        return _login_page(request, status=403, error="wrong token")
    name = name.strip()
    if not auth.NAME.fullmatch(name):
        return _login_page(
            request, status=400, error=f"your name must be {auth.NAME_RULE}, as the log shows it"
        )
    done = web.HTTPSeeOther("/")
    cookie = keys.session_cookie(name, now)
    _set_cookie(request, done, auth.SESSION_COOKIE, cookie, auth.SESSION_SECONDS)
    done.del_cookie(auth.LOGIN_COOKIE, path="/")
    log.info("console: ui:%s signed in from %s", name, request.remote)
    raise done


async def logout(request: web.Request) -> web.StreamResponse:
    await _acting(request, "/logout")
    done = web.HTTPSeeOther("/")
    done.del_cookie(auth.SESSION_COOKIE, path="/")
    raise done


# --- actions ----------------------------------------------------------------------------


def _read_only() -> str:
    return (
        f"the console is read-only: {auth.TOKEN_VAR} is not set where it runs, so nothing"
        " can be changed from here (the CLI can)"
    )


def _same_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden(f"a form from another site ({origin}) may not act here")


async def _acting(request: web.Request, action: str) -> tuple[auth.Session, Mapping[str, Any]]:
    """The session of a request that may act, and its form; Forbidden otherwise."""
    console = request.app[CONSOLE]
    if console.keys is None:
        raise Forbidden(_read_only())
    _same_origin(request)
    session = console.session(request)
    if session is None:
        raise Forbidden("sign in first (the token is asked for once, on /login)")
    form = await request.post()
    if not console.keys.form_token_ok(session, action, str(form.get("csrf", ""))):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page, try again")
    return session, form


def _back(done: actions.Done) -> NoReturn:
    """To the page of what was acted on, which says what happened."""
    where = f"/jobs/{quote(done.job.name, safe='')}"
    if done.slot is not None:
        where += f"/slots/{iso(done.slot)}"
    raise web.HTTPSeeOther(f"{where}?done={done.note}")


async def pause(request: web.Request) -> web.StreamResponse:
    session, form = await _acting(request, request.path)
    console = request.app[CONSOLE]
    job = views.find_job(console.ctx.manifest, request.match_info["job"])
    reason = str(form.get("reason", ""))[:500]
    done = await actions.pause(console.db, console.ctx, job, reason, session.actor)
    log.info("console: %s paused %s", session.actor, job.name)
    _back(done)


async def resume(request: web.Request) -> web.StreamResponse:
    session, _ = await _acting(request, request.path)
    console = request.app[CONSOLE]
    job = views.find_job(console.ctx.manifest, request.match_info["job"])
    done = await actions.resume(console.db, console.ctx, job, session.actor)
    log.info("console: %s resumed %s", session.actor, job.name)
    _back(done)


async def _send(request: web.Request, *, rerun: bool) -> web.StreamResponse:
    session, _ = await _acting(request, request.path)
    console = request.app[CONSOLE]
    ctx = console.ctx
    job = views.find_job(ctx.manifest, request.match_info["job"])
    slot = views.parse_slot(job, request.match_info["slot"], ctx.clock())
    done = await actions.run(console.db, ctx, job, slot, session.actor, rerun=rerun)
    log.info(
        "console: %s %s %s slot %s",
        session.actor,
        "reran" if rerun else "sent",
        job.name,
        iso(slot),
    )
    _back(done)


async def run_slot(request: web.Request) -> web.StreamResponse:
    return await _send(request, rerun=False)


async def rerun_slot(request: web.Request) -> web.StreamResponse:
    return await _send(request, rerun=True)


async def replay(request: web.Request) -> web.StreamResponse:
    session, _ = await _acting(request, request.path)
    console = request.app[CONSOLE]
    text = request.match_info["id"]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) < 2**63:
        raise NotFound(f"{text!r} is not a dead letter's id")
    done = await actions.replay(console.db, console.ctx, int(text), session.actor)
    log.info("console: %s replayed dead letter %s", session.actor, text)
    _back(done)
