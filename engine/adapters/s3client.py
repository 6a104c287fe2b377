"""The S3 transport to R2: the boto3 client, its retries, and its errors.

This is the only module that imports boto3/botocore. Transport retries come
from botocore's ``standard`` retry mode (5xx, 429/SlowDown, timeouts, dropped connections;
jittered exponential backoff), bounded by ``R2Settings.max_attempts`` in all. S3 errors
are classified in one place, ``classify``, and translated in one place, ``call``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from engine.adapters.r2config import R2Settings
from engine.core.errors import StorageError

T = TypeVar("T")

_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Unauthorized"}


def classify(status: int | None, code: str | None) -> tuple[bool, str]:
    """``(transient, error_class)`` of an S3 error from its HTTP status and/or code
    (per-key DeleteObjects errors have only a code)."""
    code = code or ""
    if status == 429 or code in {"SlowDown", "TooManyRequests", "10058"}:
        return True, "throttled"  # R2 allows about one write per second per key
    if status == 412 or code in {"PreconditionFailed", "ConditionalRequestConflict"}:
        return True, "conflict"  # a concurrent writer won: re-read and try again
    if code == "NoSuchBucket":
        return False, "no_bucket"  # a configuration error: no retry will create it
    if status == 404 or code in {"NoSuchKey", "NotFound"}:
        return False, "not_found"
    if status in {401, 403} or code in _AUTH_CODES:
        return False, "auth"
    if status == 408 or code == "RequestTimeout":
        return True, "timeout"
    if (status or 0) >= 500 or code in {"InternalError", "ServiceUnavailable"}:
        return True, "server"
    return False, "request"


def make_client(settings: R2Settings) -> Any:
    """A boto3 S3 client for R2: region ``auto``, checksums only when required, botocore's
    ``standard`` retries bounded to ``settings.max_attempts``, explicit timeouts."""
    _install_log_redaction()
    config = Config(
        region_name="auto",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, 2 * settings.max_concurrency),
    )
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=config,
    )
    client.meta.events.register("before-sign.s3", _drop_expect_header)
    return client


def _drop_expect_header(request: Any, **_: Any) -> None:
    # workerd (miniflare, R2's simulator) never answers `Expect: 100-continue`, so each
    # PUT would stall a second; counter bodies are tiny, so nothing is lost on R2.
    if "Expect" in request.headers:
        del request.headers["Expect"]


async def call(what: str, fn: Callable[[], T], settings: R2Settings) -> T:
    """Run one boto3 call (with botocore's retries) in a thread, translating its errors."""
    try:
        return await asyncio.to_thread(fn)
    except ClientError as exc:
        meta = exc.response.get("ResponseMetadata", {})
        status, code = meta.get("HTTPStatusCode"), exc.response.get("Error", {}).get("Code")
        transient, error_class = classify(status, code)
        tries = int(meta.get("RetryAttempts") or 0) + 1
        after = f" after {tries} attempts" if tries > 1 else ""
        raise StorageError(
            f"{what}: HTTP {status} {code}{after}", transient=transient, error_class=error_class
        ) from exc
    except (ConnectTimeoutError, ReadTimeoutError) as exc:
        s = settings
        raise StorageError(
            f"{what}: timed out (connect {s.connect_timeout:g}s, read {s.read_timeout:g}s)",
            transient=True,
            error_class="timeout",
        ) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise StorageError(
            f"{what}: connection failed ({type(exc).__name__})",
            transient=True,
            error_class="connection",
        ) from exc
    except BotoCoreError as exc:
        raise StorageError(
            f"{what}: {type(exc).__name__}", transient=False, error_class="client"
        ) from exc


# botocore's DEBUG logs show the Authorization header (``Credential=<key id>/...``) and
# S3 error bodies may carry ``<AWSAccessKeyId>``: mask both wherever botocore logs.
_CREDENTIAL = re.compile(r"(Credential=|<AWSAccessKeyId>|'AWSAccessKeyId': ')[^/<',\s]+")
_REDACTED_LOGGERS = ("botocore.endpoint", "botocore.parsers")


class _RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _CREDENTIAL.sub(r"\1***", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _install_log_redaction() -> None:
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactCredentials) for f in logger.filters):
            logger.addFilter(_RedactCredentials())
