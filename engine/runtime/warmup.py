"""Daily warmup counters: key format, counter body, the store protocol, the local
directory store, and the reset action (configuration from the environment is in
engine/adapters/r2config.py, the R2 store in engine/adapters/s3.py).

A counter's body records the UTC day it counts, so a counter from an earlier day
reads as 0 whether or not the midnight reset ran (a missed reset never blocks
sending). The reset is cleanup, and it is slot-based so that a late replay keeps
counts made after the slot.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar
from uuid import UUID

from engine.core.errors import JobFailed, StorageError

log = logging.getLogger(__name__)

KEY_PREFIX = "warmup/daily/"
Clock = Callable[[], datetime]
OrgId = UUID | str
_T = TypeVar("_T")
_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def counter_key(organization_id: OrgId, domain: str) -> str:
    """``warmup/daily/{organization_id}/{domain}``; parts that could escape the prefix
    (or a local directory) are refused."""
    org = str(organization_id)
    for name, part in (("organization_id", org), ("domain", domain)):
        if not _PART.fullmatch(part) or len(part) > 255:
            raise StorageError(
                f"invalid warmup counter {name} {part[:80]!r}",
                transient=False,
                error_class="invalid_key",
            )
    return f"{KEY_PREFIX}{org}/{domain}"


def utc_day_start(t: datetime) -> datetime:
    """00:00 UTC of ``t``'s UTC day. Naive datetimes are taken as UTC (slots are UTC)."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def utc_today(clock: Clock) -> date:
    return utc_day_start(clock()).date()


@dataclass(frozen=True)
class Counter:
    """A counter body: ``{"day": "2026-11-28", "count": 3}``."""

    day: date
    count: int

    def count_on(self, day: date) -> int:
        return self.count if self.day == day else 0

    def encode(self) -> bytes:
        return json.dumps({"day": self.day.isoformat(), "count": self.count}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Counter | None:
        """The counter, or None for a body we did not write (e.g. the replaced system's
        bare integer): such a body counts for no day, so it reads as 0 and is overwritten."""
        try:
            obj = json.loads(raw)
            day, count = date.fromisoformat(obj["day"]), obj["count"]
        except (ValueError, TypeError, KeyError):
            return None
        if type(count) is not int or count < 0:
            return None
        return cls(day, count)


def check_amount(n: int) -> None:
    if type(n) is not int or n < 0:
        raise StorageError(
            f"increment must be a non-negative int, got {n!r}",
            transient=False,
            error_class="invalid_amount",
        )


class WarmupCounterStore(Protocol):
    """Where the daily warmup counters live (R2, or a local directory)."""

    async def increment(self, organization_id: OrgId, domain: str, n: int = 1) -> int:
        """Add ``n`` to today's count and return the new count."""
        ...

    async def get(self, organization_id: OrgId, domain: str) -> int:
        """Today's count (0 for a missing counter or one from an earlier day)."""
        ...

    async def reset_daily_counter(self, organization_id: OrgId, domain: str) -> None:
        """Remove one counter unconditionally."""
        ...

    async def reset(self, pairs: Iterable[tuple[OrgId, str]], *, before: datetime) -> int:
        """Remove the counters of ``pairs`` that count days before ``before``'s UTC day;
        return how many were removed. Counters written on or after that day are kept."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class LocalDirectoryStore:
    """Counters as files under ``root`` (``root/warmup/daily/{org}/{domain}``), the
    embedded default when no R2 is configured, like wrangler's local persistence.
    Writes are atomic (temp file + ``os.replace``); a ``flock`` on ``root/.lock``
    serialises read-modify-write across threads and processes."""

    def __init__(self, root: str | Path, *, clock: Clock, lock_timeout: float = 10.0) -> None:
        self.root = Path(root)
        self._clock = clock
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self.root)!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        return None

    async def increment(self, organization_id: OrgId, domain: str, n: int = 1) -> int:
        check_amount(n)
        path = self.root / counter_key(organization_id, domain)
        return await self._run(self._increment, path, n)

    async def get(self, organization_id: OrgId, domain: str) -> int:
        path = self.root / counter_key(organization_id, domain)
        counter = await self._run(_read, path, locked=False)
        return counter.count_on(utc_today(self._clock)) if counter else 0

    async def reset_daily_counter(self, organization_id: OrgId, domain: str) -> None:
        path = self.root / counter_key(organization_id, domain)
        await self._run(_unlink, path)

    async def reset(self, pairs: Iterable[tuple[OrgId, str]], *, before: datetime) -> int:
        paths = sorted({self.root / counter_key(org, domain) for org, domain in pairs})
        cutoff = utc_day_start(before)
        return await self._run(self._reset, paths, cutoff)

    async def _run(self, fn: Callable[..., _T], *args: Any, locked: bool = True) -> _T:
        """Run file work in a thread (under the lock), translating OS errors."""
        try:
            if locked:
                return await asyncio.to_thread(self._locked, fn, *args)
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise StorageError(
                f"warmup store {self.root}: {exc.strerror or type(exc).__name__}",
                transient=False,
                error_class="local_io",
            ) from exc

    def _increment(self, path: Path, n: int) -> int:
        today = utc_today(self._clock)
        counter = _read(path)
        count = (counter.count_on(today) if counter else 0) + n
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            try:
                tmp.write(Counter(today, count).encode())
                tmp.close()
                # Atomic on POSIX: readers see the old body or the new one, never half.
                os.replace(tmp.name, path)
            except BaseException:
                _unlink(Path(tmp.name))
                raise
        return count

    def _reset(self, paths: list[Path], cutoff: datetime) -> int:
        removed = 0
        for path in paths:
            try:
                counter = _read(path)
                if counter is None:  # a body we did not write: fall back to its mtime
                    stale = path.stat().st_mtime < cutoff.timestamp()
                else:
                    stale = counter.day < cutoff.date()
            except FileNotFoundError:
                continue
            if stale and _unlink(path):
                removed += 1
        return removed

    def _locked(self, fn: Callable[..., _T], *args: Any) -> _T:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            deadline = time.monotonic() + self._lock_timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StorageError(
                            f"warmup store lock {self.root / '.lock'} not acquired"
                            f" after {self._lock_timeout:g}s",
                            transient=True,
                            error_class="timeout",
                        ) from None
                    time.sleep(0.005)
            try:
                return fn(*args)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> Counter | None:
    try:
        return Counter.decode(path.read_bytes())
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class WarmupReset:
    """The ``warmup-reset`` action: reset the counters of the rows' domains that count
    days before the slot's day. Replays (late or repeated) are harmless."""

    def __init__(self, store: WarmupCounterStore) -> None:
        self._store = store

    async def __call__(self, rows: Sequence[Mapping[str, Any]], slot: datetime) -> int:
        pairs = []
        for i, row in enumerate(rows, 1):
            try:
                pairs.append((str(row["organization_id"]), str(row["domain"])))
            except KeyError as exc:
                raise JobFailed(
                    f"warmup-reset: row {i} has no {exc.args[0]!r} column",
                    transient=False,
                    error_class="action_input",
                    hint="select organization_id and domain",
                ) from None
        before = utc_day_start(slot)
        removed = await self._store.reset(pairs, before=before)
        log.info(
            "warmup reset for %s: removed %d of %d counters", before.date(), removed, len(pairs)
        )
        return removed
