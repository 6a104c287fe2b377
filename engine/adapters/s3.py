"""The warmup counter store on R2 (or any S3 protocol server), through boto3.

This is the only module that imports boto3/botocore. boto3 is synchronous, so every
call runs in ``asyncio.to_thread``; botocore makes one attempt per call and our
bounded, jittered retries (``Backoff``) are the only ones, so they never multiply.
S3 errors are classified in one place, ``classify``.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import re
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Self, TypeVar

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
from engine.runtime.warmup import (
    KEY_PREFIX,
    Clock,
    Counter,
    OrgId,
    check_amount,
    counter_key,
    utc_day_start,
    utc_today,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 1000  # R2's cap on keys per DeleteObjects request and per list page
_LAST_WRITTEN_MAX = 10_000  # counters whose last write (body, ETag) a store remembers


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


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """At most ``attempts`` tries; full-jitter exponential delays between them. A 429
    waits at least ``throttle_seconds``."""

    attempts: int = 5
    base_seconds: float = 0.2
    cap_seconds: float = 10.0
    throttle_seconds: float = 1.0

    def delay(self, attempt: int, error: StorageError, rand: float) -> float:
        d = rand * min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))
        return max(d, self.throttle_seconds) if error.error_class == "throttled" else d


def make_client(settings: R2Settings) -> Any:
    """A boto3 S3 client for R2: region ``auto``, checksums only when required, one
    attempt per call, explicit timeouts."""
    _install_log_redaction()
    config = Config(
        region_name="auto",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"total_max_attempts": 1, "mode": "standard"},
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


class R2CounterStore:
    """Warmup counters as R2 objects ``warmup/daily/{org}/{domain}``."""

    def __init__(
        self,
        settings: R2Settings,
        *,
        clock: Clock,
        retry: Backoff = Backoff(),
        increment_retry: Backoff = Backoff(attempts=10, base_seconds=0.05, cap_seconds=2.0),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._retry_policy = retry
        self._increment_policy = increment_retry
        self._sleep = sleep
        self._random = random
        self._sent = 0
        self._sent_lock = threading.Lock()
        self._last_written: dict[str, tuple[Counter | None, str]] = {}
        self._client = make_client(settings)
        self._client.meta.events.register("before-send.s3", self._count_request)

    def __repr__(self) -> str:
        s = self._settings
        return f"R2CounterStore(endpoint_url={s.endpoint_url!r}, bucket={s.bucket!r})"

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (each attempt counts)."""
        return self._sent

    def _count_request(self, **_: Any) -> None:
        with self._sent_lock:
            self._sent += 1

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def get(self, organization_id: OrgId, domain: str) -> int:
        key = counter_key(organization_id, domain)
        current = await self._retry(f"R2 get {key}", self._retry_policy, partial(self._read, key))
        if current is None or current[0] is None:
            return 0
        return current[0].count_on(utc_today(self._clock))

    async def increment(self, organization_id: OrgId, domain: str, n: int = 1) -> int:
        check_amount(n)
        key = counter_key(organization_id, domain)

        async def attempt() -> int:
            # Read, then write only if nobody wrote in between (IfMatch the ETag we
            # read, or IfNoneMatch '*' to create); a lost race is a 412 and we re-read.
            # Our own last write stands in for the read once: if someone wrote since,
            # its ETag no longer matches and the 412 sends us back to a real read.
            current = self._last_written.pop(key, None) or await self._read(key)
            today = utc_today(self._clock)
            if current is None:
                count, condition = n, {"IfNoneMatch": "*"}
            else:
                counter, etag = current
                count = (counter.count_on(today) if counter else 0) + n
                condition = {"IfMatch": etag}
            put = partial(
                self._client.put_object,
                Bucket=self._settings.bucket,
                Key=key,
                Body=Counter(today, count).encode(),
                ContentType="application/json",
                **condition,
            )
            try:
                written = await self._call(f"R2 PutObject {key}", put)
            except StorageError as exc:
                if exc.error_class != "not_found":
                    raise
                # IfMatch on a key deleted since we read it (R2 says 412, moto 404).
                raise StorageError(exc.message, transient=True, error_class="conflict") from exc
            if len(self._last_written) >= _LAST_WRITTEN_MAX:
                self._last_written.clear()
            self._last_written[key] = (Counter(today, count), written["ETag"])
            return count

        return await self._retry(f"R2 increment {key}", self._increment_policy, attempt)

    async def reset_daily_counter(self, organization_id: OrgId, domain: str) -> None:
        key = counter_key(organization_id, domain)
        delete = partial(self._client.delete_object, Bucket=self._settings.bucket, Key=key)
        await self._retry(
            f"R2 reset {key}",
            self._retry_policy,
            partial(self._call, f"R2 DeleteObject {key}", delete),
        )

    async def reset(self, pairs: Iterable[tuple[OrgId, str]], *, before: datetime) -> int:
        wanted = {counter_key(org, domain) for org, domain in pairs}
        if not wanted:
            return 0
        stale = await self._list_stale(wanted, utc_day_start(before))
        limit = asyncio.Semaphore(self._settings.max_concurrency)

        async def bounded(batch: list[str]) -> int:
            async with limit:
                return await self._delete_batch(batch)

        tasks = [
            asyncio.create_task(bounded(stale[i : i + BATCH])) for i in range(0, len(stale), BATCH)
        ]
        try:
            return sum(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _list_stale(self, wanted: set[str], cutoff: datetime) -> list[str]:
        """The wanted keys last written before ``cutoff`` (00:00 UTC of the slot's day).

        Why LastModified instead of reading each body's day: every increment rewrites the
        whole object, so LastModified is the time of the last increment, and a counter
        last written before the slot's 00:00 counts an earlier day. One LIST page tells
        that for 1000 keys; a GET per key would cost 1000 requests. A counter written
        after the slot is kept, so a late replay of the midnight reset never wipes
        today's counts. Known seams, seconds wide: R2's clock stamps LastModified while
        the writer's clock picks the day (skew around midnight), and an increment landing
        between our LIST and our DeleteObjects is deleted with the batch. Neither can
        block sending: a counter from an earlier day reads as 0 anyway.
        """
        stale: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self._settings.bucket,
                "Prefix": KEY_PREFIX,
                "MaxKeys": BATCH,
            }
            if token:
                kwargs["ContinuationToken"] = token
            what = f"R2 ListObjectsV2 {KEY_PREFIX}"
            list_page = partial(self._client.list_objects_v2, **kwargs)
            page = await self._retry(what, self._retry_policy, partial(self._call, what, list_page))
            for obj in page.get("Contents", ()):
                if obj["Key"] in wanted and obj["LastModified"] < cutoff:
                    stale.append(obj["Key"])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return stale

    async def _delete_batch(self, keys: list[str]) -> int:
        """Delete up to 1000 keys; retry only the keys that failed."""
        pending, removed = list(keys), 0

        async def attempt() -> int:
            nonlocal pending, removed
            delete = partial(
                self._client.delete_objects,
                Bucket=self._settings.bucket,
                Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True},
            )
            response = await self._call(f"R2 DeleteObjects ({len(pending)} keys)", delete)
            errors = {e["Key"]: e.get("Code") for e in response.get("Errors", ())}
            removed += sum(1 for k in pending if k not in errors)
            pending = [k for k in pending if k in errors]
            if not pending:
                return removed
            verdicts = [classify(None, code) for code in errors.values()]
            transient = all(t for t, _ in verdicts)
            error_class = next((c for t, c in verdicts if not t), verdicts[0][1])
            code = next(iter(errors.values()))
            raise StorageError(
                f"R2 DeleteObjects failed for {len(pending)} keys ({code})",
                transient=transient,
                error_class=error_class,
            )

        return await self._retry(
            f"R2 reset of {len(keys)} warmup counters", self._retry_policy, attempt
        )

    async def _read(self, key: str) -> tuple[Counter | None, str] | None:
        """(counter or None if unreadable, ETag), or None when the key is missing."""

        def get() -> tuple[bytes, str]:
            response = self._client.get_object(Bucket=self._settings.bucket, Key=key)
            with response["Body"] as body:
                return body.read(), response["ETag"]

        try:
            raw, etag = await self._call(f"R2 GetObject {key}", get)
        except StorageError as exc:
            if exc.error_class == "not_found":
                return None
            raise
        return Counter.decode(raw), etag

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one boto3 call in a thread, translating its errors."""
        try:
            return await asyncio.to_thread(fn)
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            status, code = meta.get("HTTPStatusCode"), exc.response.get("Error", {}).get("Code")
            transient, error_class = classify(status, code)
            raise StorageError(
                f"{what}: HTTP {status} {code}", transient=transient, error_class=error_class
            ) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            s = self._settings
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

    async def _retry(self, what: str, policy: Backoff, attempt: Callable[[], Awaitable[T]]) -> T:
        """The one retry loop: transient StorageErrors are retried with backoff, at most
        ``policy.attempts`` tries in all."""
        n = 1
        while True:
            try:
                return await attempt()
            except StorageError as exc:
                if not exc.transient:
                    raise
                if n >= policy.attempts:
                    raise StorageError(
                        f"{what}: gave up after {n} attempts: {exc.message}",
                        transient=True,
                        error_class=exc.error_class,
                    ) from exc
                delay = policy.delay(n, exc, self._random())
                level = logging.DEBUG if exc.error_class == "conflict" else logging.INFO
                log.log(level, "%s: attempt %d failed (%s), retry in %.3fs", what, n, exc, delay)
                await self._sleep(delay)
                n += 1


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
