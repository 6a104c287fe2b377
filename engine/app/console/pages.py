"""The console's pages: the state every handler reads (:class:`Console`), how a page is
rendered (Jinja, autoescaped, with the header's facts and the signed-in operator), and
the handlers that only read: the grid and its fragment, a job's page, a slot's page,
the static files, ``/healthz``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from markupsafe import Markup

from engine.app.console import actions, auth, ranges, views
from engine.app.console.views import Context, NotFound
from engine.core.times import iso
from engine.runtime import scheduling

if TYPE_CHECKING:
    from engine.adapters.pg import Database

REFRESH_SECONDS = 5.0
_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


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


def message(request: web.Request, status: int, title: str, text: str) -> web.Response:
    return page(request, "message.html", status=status, title=title, text=text)


def page(request: web.Request, name: str, *, status: int = 200, **values: Any) -> web.Response:
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


def query(request: web.Request) -> dict[str, list[str]]:
    return {k: request.query.getall(k) for k in request.query}


async def index(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx = console.ctx
    jobs = ctx.manifest.jobs
    try:
        rng = ranges.parse(query(request), ctx.manifest, ctx.clock())
        view = await views.grid_view(console.db, ctx, rng)
    except ranges.BadQuery as exc:
        return page(request, "grid.html", status=400, view=None, error=str(exc), jobs=jobs)
    html, etag = _grid(console, view)
    return page(
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
        rng = ranges.parse(query(request), ctx.manifest, ctx.clock())
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
    return page(request, "job.html", view=view)


async def slot_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx = console.ctx
    job = views.find_job(ctx.manifest, request.match_info["job"])
    slot = views.parse_slot(job, request.match_info["slot"], ctx.clock())
    view = await views.slot_view(console.db, ctx, job, slot)
    return page(request, "slot.html", view=view, job=job)


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
