"""Who may act in the web console, and the proof that a form came from it.

The console reads for anyone who can reach it. Acting (pause, resume, run, rerun,
replay) needs ``CRONWRIGHT_UI_TOKEN``: without it every action answers 403. With it, an
operator signs in once on a form (the token and a name, POSTed, never in a URL) and gets
a session cookie (HttpOnly, SameSite=Strict, 12 hours). Each form then carries a CSRF
token bound to the session and to the form's own address.

Nothing is kept on the server: cookies and form tokens are HMACs under a key derived
from the token, so every process that shares the token accepts them, a restart keeps
operators signed in, and changing the token signs everyone out. The name given at sign-in
is who the database records as having acted (``ui:NAME``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from engine.core import hosts
from engine.core.errors import ConfigError

TOKEN_VAR = "CRONWRIGHT_UI_TOKEN"
MIN_TOKEN_CHARS = 16
SESSION_COOKIE = "cronwright_session"
LOGIN_COOKIE = "cronwright_login"
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
NAME_RULE = "1 to 64 letters, digits, '.', '_', '@' or '-'"
_TOKEN_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))' makes one"


def token_from(environ: Mapping[str, str]) -> str | None:
    """The console's token, or None (unset or blank): read-only."""
    token = environ.get(TOKEN_VAR, "").strip()
    return token or None


def check_exposure(host: str, token: str | None) -> None:
    """Refuse, before anything opens, a console that would let the network act without a
    token, or with a token short enough to guess. ConfigError, one line."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{TOKEN_VAR} is {len(token)} characters long; the console wants at least"
            f" {MIN_TOKEN_CHARS}",
            hint=_TOKEN_HINT,
        )
    if token is None and not hosts.is_loopback(host):
        raise ConfigError(
            f"the console would listen on {host}, beyond this machine, without {TOKEN_VAR}",
            hint=f"set {TOKEN_VAR} (at least {MIN_TOKEN_CHARS} characters; {_TOKEN_HINT}),"
            " or keep the default host 127.0.0.1",
        )


@dataclass(frozen=True)
class Session:
    name: str
    issued: int  # seconds since the epoch
    nonce: str

    @property
    def actor(self) -> str:
        """Who the database records as having acted."""
        return f"ui:{self.name}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Keys:
    """The HMACs of one token: the sign-in check, session cookies and form tokens."""

    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()
        self._key = hmac.new(token.encode(), b"cronwright console v1", hashlib.sha256).digest()

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Constant time, whatever the length of ``given``."""
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest)

    def session_cookie(self, name: str, now: int) -> str:
        payload = f"{now}:{secrets.token_hex(16)}:{name}"
        return f"{_b64(payload.encode())}.{self._mac('session', payload)}"

    def session(self, cookie: str | None, now: int) -> Session | None:
        """The session a cookie proves, or None (absent, forged, expired, from another
        token)."""
        if not cookie or cookie.count(".") != 1:
            return None
        encoded, mac = cookie.split(".")
        try:
            payload = _unb64(encoded).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        issued, nonce, name = payload.split(":", 2)
        if not (issued.isdigit() and 0 <= now - int(issued) < SESSION_SECONDS):
            return None
        return Session(name=name, issued=int(issued), nonce=nonce)

    def form_token(self, session: Session, action: str) -> str:
        """The CSRF token of the form that posts to ``action`` (a path)."""
        return self._mac("form", session.nonce, action)

    def form_token_ok(self, session: Session, action: str, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.form_token(session, action).encode())

    def login_cookie(self, now: int) -> str:
        """The sign-in form's own nonce (a double-submit pair with :meth:`login_token`),
        so that another site cannot sign a browser in under its own name."""
        payload = f"{now}:{secrets.token_hex(16)}"
        return f"{payload}.{self._mac('login', payload)}"

    def login_token(self, cookie: str) -> str:
        return self._mac("login-form", cookie)

    def login_ok(self, cookie: str | None, given: str, now: int) -> bool:
        if not cookie or cookie.count(".") != 1:
            return False
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("login", payload)):
            return False
        issued = payload.split(":", 1)[0]
        if not (issued.isdigit() and 0 <= now - int(issued) < LOGIN_SECONDS):
            return False
        return hmac.compare_digest(given.encode(), self.login_token(cookie).encode())
