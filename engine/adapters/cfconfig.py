"""Cloudflare API settings from the environment: account, token and the API's address.

The token is a bearer credential, so the address must be https; plain http is accepted
only for a loopback host (the tests' local stand-in of the API)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from engine.core import hosts
from engine.core.errors import ConfigError

API_BASE = "https://api.cloudflare.com/client/v4"


@dataclass(frozen=True, kw_only=True)
class Settings:
    account_id: str
    token: str = field(repr=False)
    base_url: str = API_BASE

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.scheme == "https" and host:
            return
        if parts.scheme == "http" and hosts.is_loopback(host):
            return
        problem = (
            "uses http://, which would send the API token in clear"
            if parts.scheme == "http"
            else "is not an https:// URL"
        )
        raise ConfigError(
            f"CLOUDFLARE_API_BASE_URL {parts.scheme}://{host}{parts.path} {problem}",
            hint="use https:// (http:// is accepted only for a loopback host:"
            " localhost, 127.0.0.1, ::1)",
        )

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
                hint="the Queues API needs an API token with Queues Edit and its account id;"
                " without Cloudflare, use the Postgres queue (--transport postgres, or"
                " transport: postgres in the manifest)",
            )
        base = environ.get("CLOUDFLARE_API_BASE_URL", "").strip() or API_BASE
        return cls(account_id=account, token=token, base_url=base.rstrip("/"))
