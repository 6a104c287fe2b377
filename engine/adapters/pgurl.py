"""``DATABASE_URL`` -> asyncpg connection options, and keeping its password out of text.

TLS is as the URL says (``sslmode`` stays in it; asyncpg honours it), Neon's pooled hosts
(PgBouncer in transaction mode, ``-pooler`` in the host) get no statement cache, and
``channel_binding`` is dropped. No asyncpg here: the CLI may redact URLs cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode

from engine.core.errors import ConfigError

MASK = "***"

# Query parameters asyncpg would otherwise forward to the server as settings, which
# rejects them ("unrecognized configuration parameter").
_DROPPED_PARAMS = frozenset({"channel_binding"})


@dataclass(frozen=True)
class ConnectOptions:
    """What asyncpg gets, derived from ``DATABASE_URL``."""

    dsn: str
    redacted: str
    statement_cache_size: int
    secrets: tuple[str, ...]


def _split(url: str) -> tuple[str, str, str, str]:
    """``scheme://netloc/rest?query`` -> (scheme, netloc, path, query); tolerates the
    multi-host netlocs urllib cannot parse."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, ""
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    return scheme, netloc, slash + path, query


def _password(url: str) -> str | None:
    _, netloc, _, query = _split(url)
    userinfo, at, _ = netloc.rpartition("@")
    if at and ":" in userinfo:
        return unquote(userinfo.split(":", 1)[1])
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "password":
            return value
    return None


def _secrets(url: str) -> tuple[str, ...]:
    password = _password(url)
    if not password:
        return ()
    # Longest first, so the encoded form is masked before its plain substring.
    forms = {password, quote(password, safe=""), quote(password)}
    return tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def redact(url: str) -> str:
    """The URL with its password (in the userinfo or the query) masked."""
    scheme, netloc, path, query = _split(url)
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hosts}"
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k == "password" else v) for k, v in pairs], safe="*")
    text = f"{scheme}://{netloc}{path}" if scheme else path
    return scrub(f"{text}?{query}" if query else text, _secrets(url))


def is_pooled(url: str) -> bool:
    """Neon's pooled endpoints (PgBouncer in transaction mode) carry ``-pooler``."""
    _, netloc, _, _ = _split(url)
    hosts = netloc.rpartition("@")[2]
    return any("-pooler" in host.split(":")[0] for host in hosts.split(","))


def options(url: str) -> ConnectOptions:
    """Connection options for ``url``. ``sslmode`` stays in the URL: asyncpg honours it."""
    scheme, netloc, path, query = _split(url)
    if scheme not in {"postgres", "postgresql"}:
        # Never echo the value: without a recognisable URL we cannot tell where a
        # password would sit in it (libpq's "key=value" form, a mistyped "postgresql:/").
        got = f"scheme '{scheme}'" if scheme.isalnum() else "a value that is not a URL"
        raise ConfigError(
            f"DATABASE_URL must start with postgresql:// or postgres://, got {got}",
            hint="write postgresql://USER:PASSWORD@HOST:5432/DB",
        )
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)]
    kept = [(k, v) for k, v in pairs if k not in _DROPPED_PARAMS]
    dsn = f"{scheme}://{netloc}{path}"
    if kept:
        dsn += "?" + urlencode(kept)
    return ConnectOptions(
        dsn=dsn,
        redacted=redact(dsn),
        statement_cache_size=0 if is_pooled(url) else 100,
        secrets=_secrets(url),
    )
