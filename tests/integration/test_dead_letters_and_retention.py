"""Dead letters (list, replay once, purge) and retention on a real Postgres, through the
operator entry points the CLI calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.app import operator
from engine.core.model import Manifest, Retention, RetryPolicy
from engine.core.times import iso
from engine.runtime import retention
from tests.fixtures.aio import run
from tests.integration.executor_support import (
    SLOT,
    Harness,
    body,
    harness,
    make_job,
    make_manifest,
)
from tests.integration.ledger_support import (
    ROLLUP_SQL,
    add_source,
    oracle,
    rerun_body,
    rollup,
    setup,
)

pytestmark = pytest.mark.postgres

HOUR = timedelta(hours=1)
JOB = make_job(retry=RetryPolicy(max_attempts=1))


@asynccontextmanager
async def broken_slots(
    dsn: str, tmp_path: Path, slots: list[datetime]
) -> AsyncIterator[tuple[Harness, Manifest]]:
    """A harness whose job dead-letters each of ``slots`` (its cause then stays until the
    test fixes it), and a manifest whose template lies on disk for the operator."""
    (tmp_path / JOB.template).write_text(ROLLUP_SQL)
    manifest = make_manifest(JOB, path=str(tmp_path / "jobs.yaml"))
    async with harness(dsn, [(JOB, ROLLUP_SQL)]) as h:
        await setup(h)
        await h.query("INSERT INTO probe.broken VALUES ('bad deploy') RETURNING why")
        h.clock.now = max(slots) + timedelta(minutes=5)
        for slot in slots:
            outcome = await h.executor.handle(body(JOB, slot), message_id=f"m-{slot:%H}", attempt=1)
            assert outcome.status == "dead_lettered"
        yield h, manifest


async def letters(h: Harness) -> list[dict[str, Any]]:
    return await h.query(
        "SELECT id, slot, replayed_as, purged_at IS NOT NULL AS purged"
        " FROM cronwright.dead_letters ORDER BY id"
    )


def test_replay_after_the_cause_is_fixed_succeeds_once_and_a_second_replay_runs_nothing(
    pg_dsn: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with broken_slots(pg_dsn, tmp_path, [SLOT]) as (h, manifest):
            source = [(SLOT - HOUR, 11), (SLOT - HOUR, 31)]
            await add_source(h, source)
            [letter] = await letters(h)
            await h.query("DELETE FROM probe.broken RETURNING why")  # the fix

            async def replay() -> list[operator.Replayed]:
                return await operator.replay_dead_letters(
                    manifest, ids=[letter["id"]], in_place=True, dsn=pg_dsn, actions={}
                )

            [first] = await replay()
            assert (first.status, first.slot) == ("succeeded", SLOT)
            [second] = await replay()
            assert (second.status, second.detail) == ("skipped", "already replayed (run)")
            assert await h.counter() == 1
            assert await rollup(h) == oracle(source)
            assert await letters(h) == [
                {"id": letter["id"], "slot": SLOT, "replayed_as": "run", "purged": False}
            ]
            assert [r["status"] for r in await h.ledger()] == ["succeeded"]

    run(main())


def test_two_concurrent_replays_of_one_dead_letter_run_it_once(pg_dsn: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with broken_slots(pg_dsn, tmp_path, [SLOT]) as (h, manifest):
            await h.query("DELETE FROM probe.broken RETURNING why")
            await h.query("UPDATE probe.sleeps SET seconds = 0.3 RETURNING seconds")
            [letter] = await letters(h)
            results = await asyncio.gather(
                *(
                    operator.replay_dead_letters(
                        manifest, ids=[letter["id"]], in_place=True, dsn=pg_dsn, actions={}
                    )
                    for _ in range(2)
                )
            )
            assert sorted(r.status for [r] in results) == ["duplicate", "succeeded"]
            assert await h.counter() == 1

    run(main())


def test_replay_all_of_a_job_skips_what_cannot_be_replayed_and_a_failure_dead_letters_anew(
    pg_dsn: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with broken_slots(pg_dsn, tmp_path, [SLOT - HOUR, SLOT]) as (h, manifest):
            await h.query(
                "INSERT INTO cronwright.dead_letters (body, reason, error_class, attempts)"
                " VALUES ('not json', 'message body is not JSON', 'invalid_message', 1)"
                " RETURNING id"
            )
            done = await operator.replay_dead_letters(
                manifest, ids=None, in_place=True, dsn=pg_dsn, actions={}
            )
            # Still broken: each replay ran, failed and left a new dead letter.
            assert [(r.slot, r.status) for r in done] == [
                (SLOT - HOUR, "dead_lettered"),
                (SLOT, "dead_lettered"),
                (None, "skipped"),
            ]
            assert (
                done[2].detail == "the message could not be parsed, so it names no slot to replay"
            )
            rows = await letters(h)
            assert [(r["slot"], r["replayed_as"]) for r in rows] == [
                (SLOT - HOUR, "run"),
                (SLOT, "run"),
                (None, None),
                (SLOT - HOUR, None),
                (SLOT, None),
            ]
            await h.query("DELETE FROM probe.broken RETURNING why")
            again = await operator.replay_dead_letters(
                manifest, ids=None, job=JOB.name, in_place=True, dsn=pg_dsn, actions={}
            )
            assert [(r.slot, r.status) for r in again] == [
                (SLOT - HOUR, "succeeded"),
                (SLOT, "succeeded"),
            ]
            assert await h.counter() == 2

    run(main())


def test_list_hides_purged_letters_and_filters_by_job_and_time(pg_dsn: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with broken_slots(pg_dsn, tmp_path, [SLOT - HOUR, SLOT]) as (h, _):
            await h.query(
                "UPDATE cronwright.dead_letters SET created_at = slot + interval '5 minutes'"
                " RETURNING id"
            )
            listed = await operator.list_dead_letters(job=JOB.name, dsn=pg_dsn)
            assert [r["slot"] for r in listed] == [SLOT - HOUR, SLOT]
            since = await operator.list_dead_letters(since=SLOT, dsn=pg_dsn)
            assert [r["slot"] for r in since] == [SLOT]
            assert await operator.list_dead_letters(job="other", dsn=pg_dsn) == []
            n = await operator.purge_dead_letters(before=SLOT, dsn=pg_dsn)
            assert n == 1
            assert [r["slot"] for r in await operator.list_dead_letters(dsn=pg_dsn)] == [SLOT]
            assert await operator.purge_dead_letters(before=SLOT, dsn=pg_dsn) == 0

    run(main())


def test_prune_keeps_each_slots_current_run_and_pending_dead_letters(
    pg_dsn: str, tmp_path: Path
) -> None:
    """Three slots, each with a failed attempt then a success, at times 40, 20 and 1 days
    before now; dead letters replayed, purged and pending at various ages. The expected
    survivors come from the rows themselves, not from the implementation."""
    now = datetime(2026, 12, 31, tzinfo=UTC)
    slots = [now - timedelta(days=d) for d in (40, 20, 1)]
    job = make_job(retry=RetryPolicy(max_attempts=2, initial_delay_seconds=1))

    async def main() -> None:
        async with harness(pg_dsn, [(job, "SELECT probe.flaky(1);\n" + ROLLUP_SQL)]) as h:
            await setup(h)
            for slot in slots:
                await h.query("SELECT setval('probe.tries', 1, false)")
                h.clock.now = slot + timedelta(minutes=1)
                assert (await h.executor.run_until_done(job, slot)).status == "succeeded"
            await h.query(
                "INSERT INTO cronwright.dead_letters"
                " (body, reason, error_class, attempts, created_at, replayed_at, purged_at)"
                " VALUES ('a', 'r', 'c', 1, $1, $1, NULL), ('b', 'r', 'c', 1, $2, NULL, $2),"
                " ('c', 'r', 'c', 1, $1, NULL, NULL), ('d', 'r', 'c', 1, $3, $3, NULL)"
                " RETURNING id",
                now - timedelta(days=100),
                now - timedelta(days=95),
                now - timedelta(days=10),
            )
            before = await h.query(
                "SELECT h.run_id, h.finished_at, h.run_id = r.run_id AS current"
                " FROM cronwright.run_history h JOIN cronwright.runs r USING (job, slot)"
            )
            assert len(before) == 6
            manifest = replace(make_manifest(job), retention=Retention(runs_days=30))
            pruned = await retention.prune(h.db, manifest, now)
            cutoff = now - timedelta(days=30)
            kept = sorted(r["run_id"] for r in before if r["current"] or r["finished_at"] >= cutoff)
            after = await h.query("SELECT run_id FROM cronwright.run_history ORDER BY run_id")
            assert [r["run_id"] for r in after] == kept
            assert pruned.runs == len(before) - len(kept) == 1
            # Dead letters: replayed or purged more than 90 days ago go; pending stay.
            assert pruned.dead_letters == 2
            bodies = await h.query("SELECT body FROM cronwright.dead_letters ORDER BY body")
            assert [r["body"] for r in bodies] == ["c", "d"]
            assert len(await h.ledger()) == 3  # every slot keeps its current run

    run(main())


def test_replaying_a_dead_lettered_rerun_finishes_that_rerun_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / JOB.template).write_text(ROLLUP_SQL)
    manifest = make_manifest(JOB, path=str(tmp_path / "jobs.yaml"))

    async def main() -> None:
        async with harness(pg_dsn, [(JOB, ROLLUP_SQL)]) as h:
            await setup(h)
            source = [(SLOT - HOUR, 2)]
            await add_source(h, source)
            assert (await h.executor.run_until_done(JOB, SLOT)).status == "succeeded"
            late = [(SLOT - HOUR, 5)]
            await add_source(h, late)
            await h.query("INSERT INTO probe.broken VALUES ('x') RETURNING why")
            rerun = await h.executor.run_until_done(JOB, SLOT, rerun="r1")
            assert rerun.status == "dead_lettered"
            await h.query("DELETE FROM probe.broken RETURNING why")
            [letter] = await letters(h)

            async def replay() -> list[operator.Replayed]:
                return await operator.replay_dead_letters(
                    manifest, ids=[letter["id"]], in_place=True, dsn=pg_dsn, actions={}
                )

            assert [r.status for r in await replay()] == ["succeeded"]
            assert await rollup(h) == oracle(source + late)
            assert [r.status for r in await replay()] == ["skipped"]
            redelivered = await h.executor.handle(
                rerun_body(JOB.type, SLOT, "r1"), message_id="m", attempt=2
            )
            assert redelivered.status == "duplicate"
            assert await h.counter() == 2

    run(main())


def test_replay_without_run_re_enqueues_the_workers_body_and_a_rerun_keeps_its_request(
    pg_dsn: str, tmp_path: Path
) -> None:
    later = SLOT + HOUR

    async def main() -> None:
        async with broken_slots(pg_dsn, tmp_path, [SLOT]) as (h, manifest):
            rerun = json.dumps({"type": JOB.type, "scheduledFor": iso(later), "rerun": "r-7"})
            h.clock.now = later + timedelta(minutes=5)
            outcome = await h.executor.handle(rerun, message_id="m-rerun", attempt=1)
            assert outcome.status == "dead_lettered"
            done = await operator.replay_dead_letters(
                manifest, ids=None, in_place=False, transport="postgres", dsn=pg_dsn
            )
            assert [(r.slot, r.status) for r in done] == [(SLOT, "enqueued"), (later, "enqueued")]
            queued = await h.query("SELECT body FROM cronwright.queue ORDER BY slot")
            assert [json.loads(r["body"]) for r in queued] == [
                {"type": JOB.type, "scheduledFor": iso(SLOT)},
                {"type": JOB.type, "scheduledFor": iso(later), "rerun": "r-7"},
            ]
            marks = await h.query("SELECT replayed_as FROM cronwright.dead_letters ORDER BY id")
            assert marks == [{"replayed_as": "enqueue:postgres"}] * 2

    run(main())
