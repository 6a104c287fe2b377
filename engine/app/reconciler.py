"""The reconciler: each pass enqueues the missing slots the scheduling core's catch-up
rules ask for (:meth:`engine.runtime.slotbook.SlotBook.to_enqueue`), through
:func:`engine.runtime.dispatch.dispatch`, so each slot is sent at most once however many
reconcilers run (the claim's primary key decides). Nothing while the cron flag is off:
slots missed then are caught up by each job's policy once it is on again."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from engine.core.model import Manifest
from engine.core.times import iso
from engine.runtime.dispatch import Sender, Slot, dispatch
from engine.runtime.ports import Db
from engine.runtime.scheduling import cron_enabled
from engine.runtime.slotbook import SlotBook

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 60.0


class Reconciler:
    def __init__(
        self,
        db: Db,
        manifest: Manifest,
        sender: Sender | None,
        book: SlotBook,
        *,
        environ: Mapping[str, str],
        include_disabled: bool = False,
        dry_run: bool = False,
    ) -> None:
        self._db = db
        self._manifest = manifest
        self._sender = sender
        self._book = book
        self._environ = environ
        self._include_disabled = include_disabled
        self._dry_run = dry_run

    @property
    def enabled(self) -> bool:
        return self._include_disabled or cron_enabled(self._manifest, self._environ)

    async def run_once(self, now: datetime) -> list[Slot]:
        """One pass: the slots enqueued now (with ``dry_run``, those that would be)."""
        if not self.enabled:
            return []
        await self._book.refresh(now)
        planned = [Slot(job, t) for job, t in self._book.to_enqueue(now)]
        if self._dry_run or not planned or self._sender is None:
            return planned
        sent = await dispatch(self._db, self._sender, planned, source="reconciler")
        await self._book.closed((s.job, s.slot) for s in planned)
        by_job: dict[str, list[datetime]] = {}
        for s in sent:
            by_job.setdefault(s.job.name, []).append(s.slot)
        for job, slots in sorted(by_job.items()):
            log.info(
                "reconciler enqueued %d missing slot%s of %s (from %s) on %s",
                len(slots),
                "s" * (len(slots) != 1),
                job,
                iso(min(slots)),
                self._sender.transport,
            )
        return sent
