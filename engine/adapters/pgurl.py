"""``DATABASE_URL`` -> asyncpg connection options, and keeping its password out of text.

The URL is checked here before asyncpg sees it, so that a malformed one (a password with
an unencoded ``/ ? # @``) is reported without echoing any of its user name or password.
TLS: an explicit ``sslmode`` stays in the URL (asyncpg honours it); without one, a
non-loopback host gets verified TLS (``verify-full`` against the system's CA store, or
against ``sslrootcert`` when given). Neon's pooled hosts (PgBouncer in transaction mode,
``-pooler`` in the host) get no statement cache, and ``channel_binding`` is dropped. No
asyncpg here: the CLI may check and redact URLs cheaply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode

from engine.core import hosts
from engine.core.errors import ConfigError
from engine.core.scrub import MASK, scrub

__all__ = [
    "MASK",
    "ConnectOptions",
    "check",
    "is_loopback",
    "is_pooled",
    "masked",
    "options",
    "redact",
    "scrub",
    "url_secrets",
]

# Query parameters asyncpg would otherwise forward to the server as settings, which
# rejects them ("unrecognized configuration parameter").
_DROPPED_PARAMS = frozenset({"channel_binding"})
_ENCODE_HINT = (
    "if the user name or password contains / ? # @ : [ ] or %, percent-encode it"
    " (@ is %40, / is %2F, # is %23)"
)
# In a malformed URL a query password's end is unknowable (a raw & or #): mask to the end.
_QUERY_PASSWORD = re.compile(r"[?&](password=)")
# libpq's and asyncpg's own query parameters; any other key is sent as a server setting.
_KNOWN_PARAMS = frozenset(
    {
        "host", "hostaddr", "port", "dbname", "database", "user", "password", "passfile",
        "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword",
        "sslnegotiation", "ssl_min_protocol_version", "ssl_max_protocol_version",
        "target_session_attrs", "krbsrvname", "gsslib", "service", "connect_timeout",
        "application_name", "options", "channel_binding",
    }
)  # fmt: skip
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class ConnectOptions:
    """What asyncpg gets, derived from ``DATABASE_URL``."""

    dsn: str
    redacted: str
    statement_cache_size: int
    secrets: tuple[str, ...]
    #: No sslmode was given and a host is remote: connect with TLS verified against the
    #: system's CA store (the caller builds the context; asyncpg's own verify-full
    #: insists on ~/.postgresql/root.crt).
    verify_with_system_cas: bool = False


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


def url_secrets(url: str) -> tuple[str, ...]:
    """What of ``url`` must never be shown: its password (in the userinfo or the query)
    and the query's ``sslpassword``, each as written and percent-encoded. Never raises,
    whatever the URL."""
    _, _, _, query = _split(url)
    values = [_password(url) or ""]
    values += [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "sslpassword"]
    forms = {f for v in values if v for f in (v, quote(v, safe=""), quote(v))}
    # Longest first, so the encoded form is masked before its plain substring.
    return tuple(sorted(forms, key=len, reverse=True))


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
    return scrub(f"{text}?{query}" if query else text, url_secrets(url))


def is_pooled(url: str) -> bool:
    """Neon's pooled endpoints (PgBouncer in transaction mode) carry ``-pooler``."""
    _, netloc, _, _ = _split(url)
    hosts = netloc.rpartition("@")[2]
    return any("-pooler" in host.split(":")[0] for host in hosts.split(","))


def masked(url: str) -> str:
    """The URL with everything that may belong to a password replaced by ``***``: all
    before its last ``@`` (the userinfo, wherever an unencoded character cut it) and all
    after a query's ``password=`` (a raw ``&`` or ``#`` hides where it ends). Safe to show
    for any malformation."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@") + 1
    query = _QUERY_PASSWORD.search(rest)
    end = query.end(1) if query else len(rest)
    if end < at:  # the last @ may be inside the query password: show nothing of either
        return f"{scheme}://{MASK}"
    shown = rest[at:end] + (MASK if query else "")
    return f"{scheme}://{MASK}@{shown}" if at else f"{scheme}://{shown}"


def _malformed(url: str, what: str) -> ConfigError:
    return ConfigError(f"DATABASE_URL {masked(url)} is malformed: {what}", hint=_ENCODE_HINT)


def _hosts(url: str) -> list[str]:
    """The host names of a checked URL (netloc and ``host=``), unquoted."""
    _, netloc, _, query = _split(url)
    hostspec = netloc.rpartition("@")[2]
    out = []
    for spec in hostspec.split(",") if hostspec else []:
        host = spec[1:].partition("]")[0] if spec.startswith("[") else spec.partition(":")[0]
        out.append(unquote(host))
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "host":
            out.extend(value.split(","))
    return out


def is_loopback(host: str) -> bool:
    """A Unix socket, ``localhost`` or a loopback address: TLS would protect nothing."""
    return not host or host.startswith("/") or hosts.is_loopback(host)


def check(url: str) -> None:
    """Raise ConfigError when asyncpg would misread ``url``. The message names what is
    wrong and shows the URL with its userinfo masked, never any part of it."""
    scheme, sep, rest = url.partition("://")
    if scheme not in {"postgres", "postgresql"} or not sep:
        # Never echo the value: without a recognisable URL we cannot tell where a
        # password would sit in it (libpq's "key=value" form, a mistyped "postgresql:/").
        got = f"scheme '{scheme}'" if sep and scheme.isalnum() else "a value that is not a URL"
        raise ConfigError(
            f"DATABASE_URL must start with postgresql:// or postgres://, got {got}",
            hint="write postgresql://USER:PASSWORD@HOST:5432/DB",
        )
    if "#" in rest:
        raise _malformed(url, "it contains #, which ends the URL there")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, after = rest[:end], rest[end:]
    if "@" in after:
        raise _malformed(url, "a / or ? comes before the @ that ends the user name and password")
    userinfo, at, hostspec = netloc.rpartition("@")
    if "@" in userinfo:
        raise _malformed(url, "the part before the host holds more than one @")
    if at and ("[" in userinfo or "]" in userinfo):
        raise _malformed(url, "the user name or password holds [ or ]")
    if at and _BAD_ESCAPE.search(userinfo):
        raise _malformed(url, "a % in the user name or password is not followed by two hex digits")
    for spec in hostspec.split(",") if hostspec else []:
        _check_host(url, spec)
    _, _, query = after.partition("?")
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise _malformed(url, "a field of the query after ? has no =") from None
        for key, value in pairs:
            if key == "port" and not all(_PORT.fullmatch(p) for p in value.split(",")):
                raise _malformed(url, "the query's port= is not a number")
        keys = {key for key, _ in pairs}
        if "password" in keys and not keys <= _KNOWN_PARAMS:
            # A raw & in a query password splits it, and the server would echo the rest
            # as an unknown setting's name.
            raise _malformed(
                url, "the query holds password= and a parameter Postgres does not know"
            )


def _check_host(url: str, spec: str) -> None:
    if not spec:
        raise _malformed(url, "the host list has an empty entry")
    if spec.startswith("["):
        m = re.fullmatch(r"\[[^\]]+\](?::([0-9]*))?", spec)
        if m is None:
            raise _malformed(url, "an IPv6 host must be written [ADDRESS] or [ADDRESS]:PORT")
        port = m.group(1) or ""
    else:
        if "[" in spec or "]" in spec:
            raise _malformed(url, "a host holds [ or ] outside an IPv6 [ADDRESS]")
        port = spec.partition(":")[2]
    if port and not _PORT.fullmatch(port):
        raise _malformed(url, "the port is not a number")
    if port and not 1 <= int(port) <= 65535:
        raise _malformed(url, "the port is out of range 1-65535")


def options(url: str, *, env_sslmode: str | None = None) -> ConnectOptions:
    """Connection options for a checked ``url``. ``env_sslmode`` is ``PGSSLMODE``: like an
    ``sslmode`` in the URL, it leaves TLS to asyncpg as asked."""
    check(url)
    scheme, netloc, path, query = _split(url)
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)]
    kept = [(k, v) for k, v in pairs if k not in _DROPPED_PARAMS]
    keys = {k for k, _ in kept}
    remote = not all(is_loopback(h) for h in _hosts(url) or ["localhost"])
    system_cas = False
    if remote and "sslmode" not in keys and not env_sslmode:
        if "sslrootcert" in keys:
            kept.append(("sslmode", "verify-full"))
        else:
            system_cas = True
    dsn = f"{scheme}://{netloc}{path}"
    if kept:
        dsn += "?" + urlencode(kept)
    return ConnectOptions(
        dsn=dsn,
        redacted=redact(dsn),
        statement_cache_size=0 if is_pooled(url) else 100,
        secrets=url_secrets(url),
        verify_with_system_cas=system_cas,
    )
