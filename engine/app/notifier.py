"""The notifier of ``serve`` and ``consume``: two background loops of the service
(:mod:`engine.app.service` runs them under its one loop policy).

- **scan** (every ``interval``, one process at a time): what happened since the last
  pass, as notices in the outbox (:mod:`engine.runtime.noticescan`); missing slots come
  from the scheduling core's book the process already keeps, refreshed here.
- **send** (every ``interval``, and at once when a ping waits or a scan recorded
  notices): the pings the executor noted go into the outbox, then due rows are claimed
  and sent, a few at a time, each with a timeout (:mod:`engine.adapters.noticesend`); a
  failure is retried with backoff and given up after a bounded number of tries, with one
  log line.

Nothing here is on the executor's path: a slow or failing receiver delays only other
notifications.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Protocol

from engine.app import logsecrets
from engine.app.health import Health
from engine.core import envurl
from engine.core.errors import NoticeError
from engine.core.job import Event
from engine.core.model import Manifest, RetryPolicy
from engine.runtime import incidents, noticescan, outbox, retry
from engine.runtime.notices import Notice, target_label
from engine.runtime.pings import Pings
from engine.runtime.ports import Db
from engine.runtime.scheduling import cron_enabled
from engine.runtime.slotbook import SlotBook

log = logging.getLogger(__name__)

#: Rows claimed per round of a send pass, at most (and rounds per pass).
BATCH = 50
ROUNDS = 20
#: Send passes woken by pings start at least this far apart.
MIN_PASS_SECONDS = 0.2
#: Missing slots a job keeps noted between scans, at most (the newest).
MAX_SEEN = 1000
#: A value from the environment shorter than this is not taken for a secret: masking it
#: everywhere would make the logs unreadable, and it could not be one.
MIN_SECRET = 4


def urls(manifest: Manifest) -> tuple[list[str], list[str]]:
    """The notification targets and the healthcheck URLs of the manifest, each once."""
    notify = [n.url for j in manifest.jobs for n in manifest.notify_for(j)]
    notify += [n.url for n in manifest.notify]
    checks = [j.healthcheck for j in manifest.jobs if j.healthcheck]
    return list(dict.fromkeys(notify)), list(dict.fromkeys(checks))


def url_secrets(manifest: Manifest, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The values the manifest's URLs take from the environment (``${NAME}``)."""
    notify, checks = urls(manifest)
    found = {
        environ[name]
        for url in (*notify, *checks)
        for name in envurl.names(url)
        if len(environ.get(name, "")) >= MIN_SECRET
    }
    return tuple(sorted(found))


class SendsNotices(Protocol):
    """What the notifier needs of :class:`engine.adapters.noticesend.NoticeSender`."""

    def room(self) -> int: ...

    async def send(self, notice: Notice) -> None: ...


class Notifier:
    def __init__(
        self,
        *,
        db: Db,
        manifest: Manifest,
        book: SlotBook,
        sender: SendsNotices,
        pings: Pings | None,
        environ: Mapping[str, str],
        health: Health,
        policy: RetryPolicy = outbox.RETRY,
        lease_seconds: float = 60.0,
        rng: retry.Rng | None = None,
        wake: Callable[[], None] = lambda: None,
        count: Callable[[str, str], None] = lambda kind, outcome: None,
    ) -> None:
        self._db = db
        self._manifest = manifest
        self._book = book
        self._sender = sender
        self._pings = pings
        self._environ = environ
        self._health = health
        self._policy = policy
        self._lease = lease_seconds
        self._rng = rng or random.Random()
        self._wake = wake  # the sender: a scan recorded notices
        self._count = count  # each try's outcome, by kind (the metrics)
        self._notified = incidents.notified(manifest)
        self.scans = bool(self._notified)
        self._tells_missing = any(
            Event.MISSING in n.events for j in self._notified for n in manifest.notify_for(j)
        )
        self._seen: dict[str, set[datetime]] = {}  # missing slots seen, not yet scanned
        self._last_pass = -MIN_PASS_SECONDS
        if self._tells_missing:
            book.listen(self.observe)

    def observe(self, now: datetime) -> None:
        """The book's listener: note each slot missing long enough at this refresh (the
        reconciler may enqueue it right after; it was missing all the same)."""
        if not cron_enabled(self._manifest, self._environ):
            return  # dispatch is off on purpose: a slot not sent is not missed
        for job in self._notified:
            slots = incidents.to_tell(self._book.missing(job), now, self._book.grace)
            if slots:
                seen = self._seen.setdefault(job.name, set())
                seen.update(slots)
                if len(seen) > MAX_SEEN:
                    self._seen[job.name] = set(sorted(seen)[-MAX_SEEN:])

    async def scan_once(self, now: datetime) -> noticescan.Scanned | None:
        """One scan pass (None: another process's pass was in progress)."""
        if self._tells_missing:
            await self._book.refresh(now)  # observed, like the reconciler's refreshes
        seen, self._seen = self._seen, {}
        missing = {job: sorted(slots) for job, slots in seen.items()}
        try:
            scanned = await noticescan.scan(
                self._db, self._manifest, missing=missing, grace=self._book.grace
            )
        except BaseException:
            self._keep(seen)
            raise
        if scanned is None:  # another process scanned: this one's sightings wait
            self._keep(seen)
        elif scanned.notices:
            self._wake()
        return scanned

    def _keep(self, seen: dict[str, set[datetime]]) -> None:
        for job, slots in seen.items():
            self._seen.setdefault(job, set()).update(slots)

    async def flush(self) -> None:
        """Record the pings the executor noted."""
        if self._pings is None:
            return
        waiting = self._pings.take()
        try:
            await outbox.record_now(self._db, waiting)
        except BaseException:
            self._pings.put_back(waiting)
            raise

    async def send_once(self) -> int:
        """Record the waiting pings, then send what is due; how many were sent. Pings are
        claimed apart from notifications: they need no thread, so a hung notification
        target (its threads busy until their timeouts) does not hold them back."""
        # Woken by each ping: a burst of runs makes one pass, not one per run.
        wait = self._last_pass + MIN_PASS_SECONDS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_pass = time.monotonic()
        await self.flush()
        done = 0
        for _ in range(ROUNDS):
            room = min(BATCH, self._sender.room())
            rows = await outbox.claim(self._db, BATCH, lease_seconds=self._lease, pings=True)
            rows += await outbox.claim(self._db, room, lease_seconds=self._lease, pings=False)
            done += sum(await asyncio.gather(*(self._send(r) for r in rows)))
            if not rows:
                break
        return done

    async def _send(self, row: outbox.Claimed) -> bool:
        notice = row.notice
        try:
            await self._sender.send(notice)
        except NoticeError as err:
            error, permanent = str(err), err.permanent
        except Exception as err:  # a bug: the row is retried like a failed send
            log.debug("sending notification %d failed", row.id, exc_info=err)
            error, permanent = f"{type(err).__name__}: {err}", False
        else:
            await outbox.sent(self._db, row)
            self._count(notice.kind, "sent")
            return True
        decision = outbox.next_try(
            row.tries, permanent=permanent, rng=self._rng, policy=self._policy
        )
        await outbox.failed(self._db, row, error, decision)
        label = target_label(notice.target)
        given_up = isinstance(decision, retry.GiveUp)
        self._count(notice.kind, "given_up" if given_up else "retry")
        if given_up:
            log.error(
                "%s notification of %s to %s given up after %d tr%s: %s",
                notice.kind,
                notice.job or "no job",
                label,
                row.tries,
                "y" if row.tries == 1 else "ies",
                error,
            )
        else:
            self._health.failed(f"notification to {label}", NoticeError(error))
        return False


@asynccontextmanager
async def open_notifier(
    *,
    db: Db,
    manifest: Manifest,
    book: SlotBook,
    pings: Pings | None,
    environ: Mapping[str, str],
    health: Health,
    timeout: float,
    policy: RetryPolicy,
    wake: Callable[[], None],
    count: Callable[[str, str], None] = lambda kind, outcome: None,
) -> AsyncIterator[Notifier]:
    """A notifier with its sender (Apprise loads here). The URLs' values from the
    environment join the secrets scrubbed from every log line, and a URL that cannot be
    sent to is reported once now."""
    from engine.adapters.noticesend import NoticeSender

    secrets = url_secrets(manifest, environ)
    logsecrets.install(environ, extra=secrets)
    async with NoticeSender(environ, timeout=timeout, secrets=secrets) as sender:
        for url, why in sender.problems(*urls(manifest)):
            log.error("notifications to %s will not be sent: %s", target_label(url), why)
        yield Notifier(
            db=db,
            manifest=manifest,
            book=book,
            sender=sender,
            pings=pings,
            environ=environ,
            health=health,
            policy=policy,
            lease_seconds=timeout * 2 + 30,
            wake=wake,
            count=count,
        )
