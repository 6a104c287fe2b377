"""The outbox and the scan against a real Postgres: an event recorded by two processes is
one row, two senders never claim one row, a target's pings go out one at a time in
order, a failed send comes back after its backoff and is given up after its last try,
the scan reads each dead letter once, after its horizon settles, even one whose
transaction committed after a newer one, and a notice never delivered is given up with
one log line."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devtools.manifests import probe_manifest
from engine.adapters.noticesend import NoticeSender
from engine.adapters.pg import Database
from engine.app.health import Health
from engine.app.notifier import Notifier
from engine.core.job import Event, Job, Notify
from engine.runtime import noticescan, outbox, retry
from engine.runtime.notices import Notice
from engine.runtime.slotbook import SlotBook
from engine.runtime.slotstore import PgSlotStore
from tests.fixtures.aio import run
from tests.fixtures.receiver import receiving

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
HOOK = "json://127.0.0.1:9/hook"
JOB = Job(name="a", type="a", cron="* * * * *", sql="sql/a.sql")
MANIFEST = replace(
    probe_manifest(JOB), notify=(Notify(url=HOOK, events=frozenset({Event.DEAD_LETTER})),)
)
LETTER = """
INSERT INTO cronwright.dead_letters (job, type, slot, message_id, body, reason, error_class,
                                     attempts)
VALUES ('a', 'a', $1, 'm', '{}', 'permanent error: boom', 'data_exception', 1)
"""


def notice(kind: str, subject: str, target: str = HOOK) -> Notice:
    return Notice(
        kind=kind,  # type: ignore[arg-type]
        subject=subject,
        target=target,
        job="a",
        slot=T0,
        title=f"{kind} {subject}",
        body="b",
    )


async def rows(db: Database) -> list[dict[str, object]]:
    return await db.fetch(
        "SELECT kind, subject, target, tries, sent_at IS NOT NULL AS sent,"
        " gave_up_at IS NOT NULL AS gave_up FROM cronwright.notifications ORDER BY id"
    )


def test_an_event_recorded_by_two_processes_at_once_is_one_row(pg_dsn: str) -> None:
    async def go() -> list[dict[str, object]]:
        events = [notice("dead_letter", f"dead letter {i}") for i in range(50)]
        async with (
            Database.open(pg_dsn, max_size=1) as one,
            Database.open(pg_dsn, max_size=1) as two,
        ):
            await asyncio.gather(outbox.record_now(one, events), outbox.record_now(two, events))
            await outbox.record_now(one, events[:1])
            return await rows(one)

    found = run(go())
    assert [r["subject"] for r in found] == [f"dead letter {i}" for i in range(50)]


def test_two_senders_claiming_at_once_never_get_the_same_row(pg_dsn: str) -> None:
    async def go() -> tuple[list[int], list[int], list[int]]:
        async with (
            Database.open(pg_dsn, max_size=1) as one,
            Database.open(pg_dsn, max_size=1) as two,
        ):
            await outbox.record_now(one, [notice("dead_letter", f"l{i}") for i in range(40)])
            a, b = await asyncio.gather(
                outbox.claim(one, 25, lease_seconds=60, pings=False),
                outbox.claim(two, 25, lease_seconds=60, pings=False),
            )
            again = await outbox.claim(one, 40, lease_seconds=60, pings=False)  # all leased
            return [r.id for r in a], [r.id for r in b], [r.id for r in again]

    a, b, again = run(go())
    assert not set(a) & set(b)
    assert len(a) + len(b) == 40 and again == []


def test_a_targets_pings_go_out_one_at_a_time_in_order(pg_dsn: str) -> None:
    a, b = "https://hc.example/a", "https://hc.example/b"

    async def go() -> list[list[str]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            await outbox.record_now(
                db,
                [
                    notice("ping_start", "s1", a),
                    notice("ping_success", "s1", a),
                    notice("ping_start", "s1", b),
                    notice("ping_start", "s2", a),
                    notice("dead_letter", "dead letter 1", a),  # not a ping: not held back
                ],
            )
            rounds = []
            for _ in range(4):
                claimed = await outbox.claim(db, 10, lease_seconds=60, pings=True)
                claimed += await outbox.claim(db, 10, lease_seconds=60, pings=False)
                rounds.append([f"{c.notice.kind} {c.notice.target[-1]}" for c in claimed])
                for c in claimed:
                    await outbox.sent(db, c)
            return rounds

    assert run(go()) == [
        ["ping_start a", "ping_start b", "dead_letter a"],
        ["ping_success a"],
        ["ping_start a"],
        [],
    ]


def test_a_failed_send_is_due_after_its_backoff_and_given_up_after_its_last_try(
    pg_dsn: str,
) -> None:
    async def go() -> list[object]:
        seen: list[object] = []
        async with Database.open(pg_dsn, max_size=1) as db:
            await outbox.record_now(db, [notice("dead_letter", "dead letter 1")])
            (first,) = await outbox.claim(db, 5, lease_seconds=60, pings=False)
            await outbox.failed(db, first, "HTTP 500", retry.Retry(3600.0))
            seen.append(
                await outbox.claim(db, 5, lease_seconds=60, pings=False)
            )  # not due for an hour
            await db.fetch("UPDATE cronwright.notifications SET due_at = now() RETURNING id")
            (second,) = await outbox.claim(db, 5, lease_seconds=60, pings=False)
            seen.append(second.tries)
            await outbox.sent(db, first)  # the first try's lease is gone: no effect
            await outbox.failed(db, second, "HTTP 500", retry.GiveUp("gave up"))
            await db.fetch("UPDATE cronwright.notifications SET due_at = now() RETURNING id")
            seen.append(await outbox.claim(db, 5, lease_seconds=60, pings=False))
            seen.append(await db.fetch("SELECT tries, last_error FROM cronwright.notifications"))
            seen.append(await rows(db))
        return seen

    not_due, tries, after, errors, final = run(go())
    assert not_due == [] and tries == 2 and after == []
    assert errors == [{"tries": 2, "last_error": "HTTP 500"}]
    assert final == [
        {
            "kind": "dead_letter",
            "subject": "dead letter 1",
            "target": HOOK,
            "tries": 2,
            "sent": False,
            "gave_up": True,
        }
    ]


async def scan(db: Database) -> noticescan.Scanned | None:
    return await noticescan.scan(db, MANIFEST, missing={}, grace=timedelta(), settle_seconds=0.0)


def test_the_scan_tells_each_dead_letter_once_and_one_process_scans_at_a_time(
    pg_dsn: str,
) -> None:
    async def go() -> list[object]:
        seen: list[object] = []
        async with Database.open(pg_dsn, max_size=2) as db:
            await db.fetch(LETTER + " RETURNING id", T0)
            seen.append(await scan(db))  # takes the horizon: the letter is read next pass
            seen.append(await scan(db))
            seen.append(await scan(db))
            async with db.transaction() as tx:  # another process's pass holds the lock
                await tx.fetchrow(
                    "SELECT pg_advisory_xact_lock(hashtextextended("
                    "'cronwright.notifications.scan', 0))"
                )
                seen.append(await scan(db))
            seen.append(await rows(db))
        return seen

    first, second, third, locked, found = run(go())
    assert first == noticescan.Scanned(letters=0, runs=0, notices=0, skipped=0)
    assert second == noticescan.Scanned(letters=1, runs=0, notices=1, skipped=0)
    assert third == noticescan.Scanned(letters=0, runs=0, notices=0, skipped=0)
    assert locked is None
    assert [(r["kind"], r["subject"], r["target"]) for r in found] == [
        ("dead_letter", "dead letter 1", HOOK)
    ]


def test_a_dead_letter_committed_after_a_newer_one_is_still_told(pg_dsn: str) -> None:
    """Its id is below the newest one seen, but the horizon waits for its commit."""

    async def go() -> list[dict[str, object]]:
        async with Database.open(pg_dsn, max_size=3) as db:
            await scan(db)
            async with db.transaction() as slow:
                await slow.execute(LETTER, T0)  # id 1, not committed yet
                await db.fetch(LETTER + " RETURNING id", T0 + timedelta(minutes=1))  # id 2
                await scan(db)  # horizon: 2
            await scan(db)
            await scan(db)
            return await rows(db)

    assert [r["subject"] for r in run(go())] == ["dead letter 1", "dead letter 2"]


def test_a_cursor_no_scan_moved_for_an_hour_starts_again_at_the_newest_row(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> tuple[list[object], list[dict[str, object]]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            for i in range(3):
                await db.fetch(LETTER + " RETURNING id", T0 + timedelta(minutes=i))
            await db.fetch(
                "UPDATE cronwright.notification_cursors"
                " SET horizon_at = now() - interval '2 hours' RETURNING source"
            )
            passes = [await scan(db), await scan(db)]
            await db.fetch(LETTER + " RETURNING id", T0 + timedelta(minutes=5))
            passes += [await scan(db), await scan(db)]
            return passes, await rows(db)

    with caplog.at_level(logging.WARNING):
        passes, found = run(go())
    assert passes[0] == noticescan.Scanned(letters=0, runs=0, notices=0, skipped=3)
    assert [r["subject"] for r in found] == ["dead letter 4"]
    assert [r.getMessage() for r in caplog.records] == [
        "notifications start from now: 3 earlier dead letters and runs were written while no"
        " notifier ran, and are not sent"
    ]


def test_a_notification_never_delivered_is_given_up_with_one_log_line(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the notifier and the real sender, against a receiver that always fails:
    the first failure is one rate-limited line, the last try one line naming the target
    by its scheme and host, and the row is given up."""

    counted: list[tuple[str, str]] = []

    async def go(hook: str) -> list[dict[str, object]]:
        manifest = replace(MANIFEST, notify=(Notify(url=hook),))
        async with Database.open(pg_dsn, max_size=2) as db, NoticeSender({}, timeout=5) as sender:
            book = SlotBook(PgSlotStore(db), manifest.jobs, grace=timedelta(), register=False)
            notifier = Notifier(
                db=db,
                manifest=manifest,
                book=book,
                sender=sender,
                pings=None,
                environ={"ENABLE_CRON": "false"},
                health=Health(),
                policy=outbox.policy(tries=3, first_delay_seconds=1),
                count=lambda kind, outcome: counted.append((kind, outcome)),
            )
            await outbox.record_now(
                db, [replace(notice("dead_letter", "dead letter 1"), target=hook)]
            )
            for _ in range(3):
                assert await notifier.send_once() == 0
                await db.fetch("UPDATE cronwright.notifications SET due_at = now() RETURNING id")
            assert await notifier.send_once() == 0  # given up: nothing is tried
            return await rows(db)

    with receiving(failures=100) as receiver, caplog.at_level(logging.WARNING):
        found = run(go(receiver.url("/hook")))
        tried = len(receiver.all())
    assert tried == 3
    assert [(r["tries"], r["gave_up"]) for r in found] == [(3, True)]
    # What the metrics count (cronwright_notifications_total, alerted on when given up).
    assert counted == [("dead_letter", "retry")] * 2 + [("dead_letter", "given_up")]
    label = f"json://127.0.0.1:{receiver.port}"
    assert [r.getMessage() for r in caplog.records] == [
        f"notification to {label} failed: Failed to send JSON POST notification: Internal"
        " server error., error=500.; going on",
        f"dead_letter notification of a to {label} given up after 3 tries: Failed to send"
        " JSON POST notification: Internal server error., error=500.",
    ]
