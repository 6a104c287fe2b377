"""The warmup counter store in a local directory: the embedded default when no R2 is
configured, like wrangler's local persistence."""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from engine.core.errors import StorageError
from engine.core.times import Clock, utc_day_start
from engine.runtime.warmup.counter import Counter, check_amount, utc_today
from engine.runtime.warmup.keys import OrgId, counter_key

_T = TypeVar("_T")


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
