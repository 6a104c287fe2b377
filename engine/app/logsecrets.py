"""The secrets a cronwright process knows, kept out of every log record it makes.

The CLI calls :func:`install` once at start: from then on each record any logger creates
(ours, asyncpg's, botocore's, aiohttp's) passes :class:`engine.core.scrub.ScrubSecrets`
before a handler sees it, whatever handlers are configured later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from engine.adapters.pgurl import url_secrets
from engine.core.scrub import ScrubSecrets

#: Variables whose whole value is a secret: the Postgres password libpq and asyncpg read
#: when DATABASE_URL has none, the R2 key pair, the Cloudflare API token, the web
#: console's token.
SECRET_VARIABLES = (
    "PGPASSWORD",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "CLOUDFLARE_API_TOKEN",
    "CRONWRIGHT_UI_TOKEN",
)


def known_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Every secret the environment gives this process: DATABASE_URL's password (and
    sslpassword), as written and percent-encoded, and the values of
    :data:`SECRET_VARIABLES`."""
    found = set(url_secrets(environ.get("DATABASE_URL", "").strip()))
    found.update(v for name in SECRET_VARIABLES if (v := environ.get(name, "").strip()))
    return tuple(sorted(found, key=len, reverse=True))


class _ScrubbingFactory:
    """A log record factory: the one before it, then the filter."""

    def __init__(self, base: Any, scrubber: ScrubSecrets) -> None:
        self.base = base
        self.scrubber = scrubber

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.base(*args, **kwargs)
        self.scrubber.filter(record)
        return record


def install(environ: Mapping[str, str], *, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Scrub the environment's secrets (and ``extra`` ones: the values notification URLs
    take from the environment) from every log record from now on; returns them.
    Installing again replaces the previous secrets (the CLI runs in-process in tests)."""
    found = {*known_secrets(environ), *(s for s in extra if s)}
    secrets = tuple(sorted(found, key=len, reverse=True))
    current = logging.getLogRecordFactory()
    base = current.base if isinstance(current, _ScrubbingFactory) else current
    if secrets:
        logging.setLogRecordFactory(_ScrubbingFactory(base, ScrubSecrets(secrets)))
    else:
        logging.setLogRecordFactory(base)
    return secrets
