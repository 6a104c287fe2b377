"""The ``warmup-reset`` action. The reset is cleanup, and it is slot-based so that a late
replay keeps counts made after the slot."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.core.errors import JobFailed
from engine.core.times import utc_day_start
from engine.runtime.warmup.store import WarmupCounterStore

log = logging.getLogger(__name__)


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
