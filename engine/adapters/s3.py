"""The warmup counter store on R2 (or any S3 protocol server).

boto3 is synchronous, so every call runs in ``asyncio.to_thread`` (s3client.call), and
transport faults (5xx, 429, timeouts, dropped connections) are retried by botocore inside
that call (s3client.make_client). Two retries stay ours, because botocore cannot know
about them: a DeleteObjects that succeeded for some keys and failed for others is retried
for the failed keys only, and an increment that lost a conditional write (412) re-reads
and tries again. Both use ``StoreRetry``.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Self

from engine.adapters.r2config import R2Settings
from engine.adapters.s3client import call, classify, make_client
from engine.core.errors import StorageError
from engine.core.times import Clock, utc_day_start
from engine.runtime.warmup import KEY_PREFIX, Counter, OrgId, check_amount, counter_key, utc_today

log = logging.getLogger(__name__)

BATCH = 1000  # R2's cap on keys per DeleteObjects request and per list page
_LAST_WRITTEN_MAX = 10_000  # counters whose last write (body, ETag) a store remembers


@dataclass(frozen=True, kw_only=True)
class StoreRetry:
    """Our own retries (failed keys of a DeleteObjects, lost conditional writes): at most
    ``attempts`` tries; full-jitter exponential delays between them. A throttled key
    waits at least ``throttle_seconds``."""

    attempts: int = 5
    base_seconds: float = 0.2
    cap_seconds: float = 10.0
    throttle_seconds: float = 1.0

    def delay(self, attempt: int, error: StorageError, rand: float) -> float:
        d = rand * min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))
        return max(d, self.throttle_seconds) if error.error_class == "throttled" else d


class R2CounterStore:
    """Warmup counters as R2 objects ``warmup/daily/{org}/{domain}``."""

    def __init__(
        self,
        settings: R2Settings,
        *,
        clock: Clock,
        partial_retry: StoreRetry = StoreRetry(),
        conflict_retry: StoreRetry = StoreRetry(attempts=10, base_seconds=0.05, cap_seconds=2.0),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._partial_policy = partial_retry
        self._conflict_policy = conflict_retry
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
        current = await self._read(key)
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
                written = await call(f"R2 PutObject {key}", put, self._settings)
            except StorageError as exc:
                if exc.error_class != "not_found":
                    raise
                # IfMatch on a key deleted since we read it (R2 says 412, moto 404).
                raise StorageError(exc.message, transient=True, error_class="conflict") from exc
            if len(self._last_written) >= _LAST_WRITTEN_MAX:
                self._last_written.clear()
            self._last_written[key] = (Counter(today, count), written["ETag"])
            return count

        tries = 0
        while True:
            tries += 1
            try:
                return await attempt()
            except StorageError as exc:
                if exc.error_class != "conflict":
                    raise  # botocore already retried what the transport can
                await self._backoff(f"R2 increment {key}", self._conflict_policy, tries, exc)

    async def reset_daily_counter(self, organization_id: OrgId, domain: str) -> None:
        key = counter_key(organization_id, domain)
        delete = partial(self._client.delete_object, Bucket=self._settings.bucket, Key=key)
        await call(f"R2 DeleteObject {key}", delete, self._settings)

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
            page = await call(what, list_page, self._settings)
            for obj in page.get("Contents", ()):
                if obj["Key"] in wanted and obj["LastModified"] < cutoff:
                    stale.append(obj["Key"])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return stale

    async def _delete_batch(self, keys: list[str]) -> int:
        """Delete up to 1000 keys; retry only the keys that failed (botocore has retried
        the request itself)."""
        pending, removed, tries = list(keys), 0, 0
        while True:
            tries += 1
            delete = partial(
                self._client.delete_objects,
                Bucket=self._settings.bucket,
                Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True},
            )
            what = f"R2 DeleteObjects ({len(pending)} keys)"
            response = await call(what, delete, self._settings)
            errors = {e["Key"]: e.get("Code") for e in response.get("Errors", ())}
            removed += sum(1 for k in pending if k not in errors)
            pending = [k for k in pending if k in errors]
            if not pending:
                return removed
            verdicts = [classify(None, code) for code in errors.values()]
            transient = all(t for t, _ in verdicts)
            error_class = next((c for t, c in verdicts if not t), verdicts[0][1])
            code = next(iter(errors.values()))
            failed = StorageError(
                f"R2 DeleteObjects failed for {len(pending)} keys ({code})",
                transient=transient,
                error_class=error_class,
            )
            await self._backoff(
                f"R2 reset of {len(keys)} warmup counters", self._partial_policy, tries, failed
            )

    async def _read(self, key: str) -> tuple[Counter | None, str] | None:
        """(counter or None if unreadable, ETag), or None when the key is missing."""

        def get() -> tuple[bytes, str]:
            response = self._client.get_object(Bucket=self._settings.bucket, Key=key)
            with response["Body"] as body:
                return body.read(), response["ETag"]

        try:
            raw, etag = await call(f"R2 GetObject {key}", get, self._settings)
        except StorageError as exc:
            if exc.error_class == "not_found":
                return None
            raise
        return Counter.decode(raw), etag

    async def _backoff(self, what: str, policy: StoreRetry, n: int, error: StorageError) -> None:
        """After our attempt ``n`` failed with ``error``: raise it when it is permanent or
        the attempts are spent, else wait the policy's delay."""
        if not error.transient:
            raise error
        if n >= policy.attempts:
            raise StorageError(
                f"{what}: gave up after {n} attempts: {error.message}",
                transient=True,
                error_class=error.error_class,
            ) from error
        delay = policy.delay(n, error, self._random())
        level = logging.DEBUG if error.error_class == "conflict" else logging.INFO
        log.log(level, "%s: attempt %d failed (%s), retry in %.3fs", what, n, error, delay)
        await self._sleep(delay)
