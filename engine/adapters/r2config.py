"""R2's settings from the environment: ``R2_ENDPOINT_URL`` or ``R2_ACCOUNT_ID``, the key
pair, ``R2_BUCKET``. Errors name the variable, never its value. (Which store to use, R2 or
the local directory, is chosen in engine/app/wiring.py.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.core.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class R2Settings:
    """Where and how to reach R2. The credentials never appear in ``repr``."""

    endpoint_url: str
    bucket: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_concurrency: int = 4
    max_attempts: int = 5  # per request, in all: botocore's standard retries are bounded


def r2_settings_from_env(environ: Mapping[str, str], *, bucket: str | None) -> R2Settings | None:
    """R2 settings from ``R2_ENDPOINT_URL`` or ``R2_ACCOUNT_ID`` plus the key pair and an
    optional ``R2_BUCKET``; None when neither endpoint variable is set. Errors name
    the variable, never its value."""

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    endpoint, account = get("R2_ENDPOINT_URL"), get("R2_ACCOUNT_ID")
    if not endpoint and not account:
        stray = [n for n in ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY") if get(n)]
        if stray:
            raise ConfigError(
                f"{stray[0]} is set but neither R2_ENDPOINT_URL nor R2_ACCOUNT_ID is",
                hint="set R2_ACCOUNT_ID (or R2_ENDPOINT_URL), or unset the R2 keys",
            )
        return None
    if endpoint:
        if not re.fullmatch(
            r"https?://(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(/\S*)?", endpoint
        ):
            raise ConfigError(
                "R2_ENDPOINT_URL is not an http(s) URL without credentials",
                hint="use https://<account_id>.r2.cloudflarestorage.com",
            )
    elif not re.fullmatch(r"[A-Za-z0-9]+", account):
        raise ConfigError("R2_ACCOUNT_ID is not an account id", hint="use the 32-character id")
    else:
        endpoint = f"https://{account}.r2.cloudflarestorage.com"
    for name in ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        if not get(name):
            raise ConfigError(
                f"{name} is not set", hint="R2 needs R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
            )
    bucket_name = get("R2_BUCKET") or bucket
    if not bucket_name:
        raise ConfigError("no R2 bucket", hint="set R2_BUCKET or r2_bucket in jobs.yaml")
    return R2Settings(
        endpoint_url=endpoint,
        bucket=bucket_name,
        access_key_id=get("R2_ACCESS_KEY_ID"),
        secret_access_key=get("R2_SECRET_ACCESS_KEY"),
    )
