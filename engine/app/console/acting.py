"""Signing in and acting. An action passes, in order: a token is configured (else 403:
read-only), the request is same-origin (when the browser says where it comes from),
a session cookie proves a sign-in, and the form's CSRF token is the one of this session
and this address. Only then does it go through :mod:`engine.app.console.actions` and
lead back, with a 303, to the page of what it acted on."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

from aiohttp import web

from engine.app.console import actions, auth, views
from engine.app.console.pages import CONSOLE, Forbidden, page
from engine.app.console.views import NotFound
from engine.core.times import iso

log = logging.getLogger(__name__)


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


def _login_page(
    request: web.Request, *, status: int = 200, error: str | None = None
) -> web.Response:
    keys = request.app[CONSOLE].keys
    if keys is None:
        return page(request, "login.html", status=status, login_token="", error=error)
    cookie = keys.login_cookie(int(time.time()))
    response = page(
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


def _back(done: actions.Acted) -> NoReturn:
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
