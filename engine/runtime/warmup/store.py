"""What a warmup counter store offers (R2 in engine/adapters/s3.py, a local directory in
engine/adapters/localstore.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, Self

from engine.runtime.warmup.keys import OrgId


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
