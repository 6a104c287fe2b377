"""Background loops that ``serve`` and ``consume`` run beside their consumers: the
reconciler (:mod:`engine.app.reconciler`) and the daily prune of finished history
(:mod:`engine.runtime.retention`). Each pass that fails is logged and retried next time:
housekeeping never stops the consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engine.core.errors import CronwrightError
from engine.core.model import Manifest
from engine.core.times import Clock
from engine.runtime import retention
from engine.runtime.ledger import Db

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400.0


async def prune_daily(
    db: Db, manifest: Manifest, clock: Clock, stop: asyncio.Event, interval: float = DAY_SECONDS
) -> None:
    """Apply the manifest's ``retention`` now and then every ``interval`` seconds until
    ``stop`` is set."""
    while not stop.is_set():
        try:
            pruned = await retention.prune(db, manifest, clock())
        except CronwrightError as err:
            log.warning("daily prune failed: %s; trying again in %gs", err, interval)
        else:
            if pruned.runs or pruned.dead_letters:
                log.info(
                    "pruned %d superseded runs and %d dead letters",
                    pruned.runs,
                    pruned.dead_letters,
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
