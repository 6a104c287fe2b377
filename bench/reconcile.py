"""What a reconcile pass, the gauges' refresh and ``cronwright slots`` cost at 6 jobs and
at 1,000: queries per pass and time per pass, the 1,000-job figures as ratios of the
six-job ones measured in the same run (``make bench``).

The six jobs are the example project's (jobs.yaml); the thousand are
``devtools.manifests.scale_project`` (ten kinds of cron, a third of them zoned). Each
runs on a database of its own on one throwaway Postgres, as ``serve`` runs them (the
Postgres transport: no grace). The state is a steady one: every job first seen two days
before the first pass, every due slot of its catch-up window run (a succeeded ledger row)
and sent by the scheduler, but for an outage of five minutes three hours before, whose
slots are missing. Each round, timed:

- the first pass after a start: a new book's reconcile pass at 11:59, which looks at
  every slot of every job's catch-up window and enqueues the outage's slots (they are
  unclaimed again after the round, untimed);
- the steady pass, the minute after (12:00), once ``serve``'s scheduler (the real one,
  untimed) has sent that minute's slots and told the book it shares with the
  reconciler: it asks about none of them;
- the same pass by a reconciler with no scheduler in its process (``cronwright
  reconcile``, ``consume --reconcile-interval``: its book passed at 11:59): it asks
  about the new minute's slots, every one;
- the gauges' refresh (queue depth and each job's missing slots) at 12:00, on a book of
  its own that passed at 11:59 and was told what the scheduler sent: in ``serve`` the
  gauges share the reconciler's book, and whichever of the two first sees a minute pays
  for it;
- ``cronwright slots`` for every job over the last hour.

Queries are counted at the connection (devtools/roundtrips.py): every statement but
BEGIN and COMMIT; round trips count those too. Goals: the same handful of queries at
6 and at 1,000 jobs for every pass; both steady passes and the gauges' refresh at 1,000
jobs <= 4x their six-job time. The first pass and ``slots`` have no time goal: their work
follows the slots they look at (a day of every job's slots; an hour's). Run from the repo
root:

    .venv/bin/python -m bench.reconcile [--rounds 11] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from devtools import pgserver
from devtools.manifests import scale_project
from devtools.roundtrips import RoundTrips, counted
from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.adapters.pgqueue import PgQueue, PgSender
from engine.app import observe
from engine.app.reconciler import Reconciler
from engine.app.scheduler import Scheduler
from engine.core.model import CatchUpPolicy, Manifest
from engine.manifest import load
from engine.runtime import scheduling
from engine.runtime.ports import SlotFacts
from engine.runtime.slotbook import SlotBook
from engine.runtime.slotstore import PgSlotStore

ROOT = Path(__file__).resolve().parents[1]
FIRST = datetime(2026, 10, 30, 11, 59, 30, tzinfo=UTC)  # the first pass after a start
STEADY = FIRST + timedelta(seconds=30)  # the minute after: 12:00, a new slot of every hourly job
OUTAGE = (FIRST - timedelta(hours=3), FIRST - timedelta(hours=3) + timedelta(minutes=5))
GRACE = scheduling.grace_for("postgres")
TICK = timedelta(microseconds=1)
GOAL_RATIO = 4.0
HANDFUL = 5
PASSES = (
    "first pass",
    "steady pass",
    "steady, alone",
    "gauges' refresh",
    "slots, last hour",
)


@dataclass
class Figures:
    jobs: int
    ms: dict[str, list[float]] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=dict)
    trips: dict[str, int] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)
    enqueued: int = 0

    def median(self, what: str) -> float:
        return statistics.median(self.ms[what])


class AskedStore(PgSlotStore):
    """The Postgres store, counting the (job, slot) pairs it is asked about."""

    asked = 0

    async def facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> list[SlotFacts]:
        self.asked += len(pairs)
        return await super().facts(pairs, latest)

    async def open_facts(
        self, pairs: Sequence[tuple[str, datetime]], latest: Sequence[bool]
    ) -> dict[int, SlotFacts]:
        self.asked += len(pairs)
        return await super().open_facts(pairs, latest)


def due_at_steady(manifest: Manifest) -> int:
    """The slots of 12:00: what the scheduler sends."""
    return sum(len(s) for _, s in scheduling.slots_by_job(manifest.jobs, FIRST, STEADY + TICK))


def outage_slots(manifest: Manifest) -> int:
    """The slots the first pass owes: the outage's, every job catching up all of a day."""
    assert all(j.catch_up.policy is CatchUpPolicy.ALL for j in manifest.jobs)
    return sum(len(s) for _, s in scheduling.slots_by_job(manifest.jobs, *OUTAGE))


async def seed(db: Database, manifest: Manifest) -> None:
    """Two days of history: every slot in each job's catch-up window run and dispatched,
    but the outage's."""
    jobs = list(manifest.jobs)
    seen = FIRST - timedelta(days=2)
    start = FIRST - timedelta(seconds=max(j.catch_up.within_seconds for j in jobs))
    listed = scheduling.slots_by_job(jobs, min(start, seen), STEADY)
    done = [
        (job.name, t)
        for job, slots in listed
        for t in slots
        if t >= seen and not OUTAGE[0] <= t < OUTAGE[1]
    ]
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO cronwright.jobs (job, first_seen) SELECT j, $2 FROM unnest($1::text[]) j",
            [j.name for j in jobs],
            seen,
        )
        await tx.execute(
            "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
            " SELECT j, s, 'succeeded', 1, s FROM unnest($1::text[], $2::timestamptz[]) AS u(j, s)",
            [j for j, _ in done],
            [t for _, t in done],
        )
        await tx.execute(
            "INSERT INTO cronwright.dispatched (job, slot, source, transport)"
            " SELECT j, s, 'scheduler', 'postgres'"
            " FROM unnest($1::text[], $2::timestamptz[]) AS u(j, s)",
            [j for j, _ in done],
            [t for _, t in done],
        )
        await tx.execute("ANALYZE cronwright.jobs, cronwright.runs, cronwright.dispatched")


async def undo_round(db: Database, dsn: str) -> None:
    """What a round sent goes, so that the next round finds the same state: the rows, and
    (VACUUM) their dead index entries, which a steady database never has (nothing deletes
    what was dispatched minutes ago) and which would otherwise pile up round after round
    under the very keys the steady pass probes."""
    async with db.transaction() as tx:
        await tx.execute(
            "DELETE FROM cronwright.dispatched WHERE source = 'reconciler' OR slot >= $1", STEADY
        )
        await tx.execute("DELETE FROM cronwright.queue")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM cronwright.dispatched, cronwright.queue")
    finally:
        await conn.close()


async def timed(
    figures: Figures,
    what: str,
    trips: RoundTrips,
    store: AskedStore,
    work: Callable[[], Awaitable[Any]],
) -> Any:
    trips.clear()
    store.asked = 0
    t0 = time.perf_counter()
    result = await work()
    figures.ms.setdefault(what, []).append((time.perf_counter() - t0) * 1000)
    figures.queries[what] = trips.queries
    figures.trips[what] = trips.trips
    figures.asked[what] = store.asked
    return result


async def one_round(
    db: Database,
    dsn: str,
    trips: RoundTrips,
    manifest: Manifest,
    metrics: observe.Metrics,
    figures: Figures,
) -> None:
    store = AskedStore(db)
    sender = PgSender(manifest.queue.name)
    # serve's book: the reconciler's (and the gauges'), told by the scheduler what it sent.
    book = SlotBook(store, manifest.jobs, grace=GRACE, register=True)
    reconciler = Reconciler(db, manifest, sender, book, environ={})
    sent = await timed(figures, PASSES[0], trips, store, lambda: reconciler.run_once(FIRST))
    figures.enqueued = len(sent)
    assert len(sent) == outage_slots(manifest), (len(sent), outage_slots(manifest))
    # A reconciler with no scheduler in its process, and the gauges' own book, as they
    # stood after 11:59 (untimed).
    alone = Reconciler(
        db,
        manifest,
        sender,
        SlotBook(store, manifest.jobs, grace=GRACE, register=True),
        environ={},
    )
    await alone.run_once(FIRST)
    gauges_book = SlotBook(store, manifest.jobs, grace=GRACE, register=True)
    await gauges_book.refresh(FIRST)
    # serve's scheduler sends 12:00's slots (untimed), and tells its book; in serve the
    # gauges share that book, so theirs is told too.
    scheduler = Scheduler(
        db=db,
        store=store,
        manifest=manifest,
        sender=sender,
        clock=lambda: STEADY,
        sleep=asyncio.sleep,
        environ={},
        book=book,
    )
    assert len(await scheduler.tick(FIRST, STEADY)) == due_at_steady(manifest)
    await gauges_book.closed((s.job, s.slot) for s in scheduler.due_between(FIRST, STEADY))
    assert await timed(figures, PASSES[1], trips, store, lambda: reconciler.run_once(STEADY)) == []
    assert await timed(figures, PASSES[2], trips, store, lambda: alone.run_once(STEADY)) == []
    depth = observe.local_depth(PgQueue(db, manifest.queue.name))
    await timed(
        figures,
        PASSES[3],
        trips,
        store,
        lambda: observe.refresh(metrics, gauges_book, manifest.queue.name, depth, STEADY),
    )
    hour = scheduling.slots_by_job(
        manifest.jobs, STEADY - timedelta(hours=1), STEADY + timedelta(microseconds=1)
    )
    await timed(
        figures,
        PASSES[4],
        trips,
        store,
        lambda: scheduling.statuses(store, hour, now=STEADY, grace=GRACE),
    )
    await undo_round(db, dsn)


async def measure(server: pgserver.PgServer, manifest: Manifest, rounds: int) -> Figures:
    name = f"reconcile_{uuid.uuid4().hex[:12]}"
    await pgserver.admin(server, f'CREATE DATABASE "{name}"')
    dsn = server.dsn(name)
    await migrate_url(dsn, None)
    figures = Figures(jobs=len(manifest.jobs))
    metrics = observe.Metrics(manifest)  # once, as serve makes it
    async with counted(dsn, max_size=2) as (db, trips):
        await seed(db, manifest)
        for i in range(rounds + 1):  # the first warms the statement cache
            await one_round(db, dsn, trips, manifest, metrics, figures)
            if i == 0:
                figures.ms.clear()
    return figures


def report(small: Figures, big: Figures, rounds: int) -> None:
    print(
        f"pass cost: {small.jobs} jobs (the example) and {big.jobs:,} (scale_project), "
        f"median of {rounds} rounds; the first pass enqueued the outage's {small.enqueued}"
        f" and {big.enqueued} slots"
    )
    print(
        f"  {'':18} {'queries':>9} {'round trips':>12} {'slots asked':>13}"
        f" {'ms, ' + str(small.jobs):>8} {'ms, ' + format(big.jobs, ','):>10} {'ratio':>7}"
        "  goal (range of the 1,000-job ms)"
    )
    for what in PASSES:
        ratio = big.median(what) / small.median(what)
        same = small.queries[what] == big.queries[what] <= HANDFUL
        goal = f"queries the same, <= {HANDFUL}: {'met' if same else 'MISSED'}"
        if what in PASSES[1:4]:
            goal += f"; <= {GOAL_RATIO:g}x: {'met' if ratio <= GOAL_RATIO else 'MISSED'}"
        print(
            f"  {what:18} {small.queries[what]:>4} / {big.queries[what]:<2}"
            f" {small.trips[what]:>5} / {big.trips[what]:<4}"
            f" {small.asked[what]:>5} / {big.asked[what]:<6}"
            f" {small.median(what):8.2f} {big.median(what):10.2f} {ratio:6.1f}x  {goal}"
            f"  ({min(big.ms[what]):.1f}-{max(big.ms[what]):.1f})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="rounds; medians are reported")
    parser.add_argument("--jobs", type=int, default=1000, help="the large project's jobs")
    args = parser.parse_args(argv)
    small = load(ROOT / "jobs.yaml")
    with tempfile.TemporaryDirectory(prefix="cronwright-reconcile-") as tmp:
        big = load(scale_project(Path(tmp), args.jobs))
    server = pgserver.start()
    try:
        figures = [asyncio.run(measure(server, m, args.rounds)) for m in (small, big)]
    finally:
        pgserver.stop(server)
    report(*figures, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
