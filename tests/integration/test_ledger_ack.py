"""A queue's ack is sent with the ledger's success and COMMIT (one round trip), so the
ledger row, its history row and the ack commit together or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.adapters.migrate import migrate_url
from engine.adapters.pg import Database
from engine.core.errors import JobFailed
from engine.runtime import ledger
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

SLOT = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 10, 31, 10, 0, 5, tzinfo=UTC)
# Two parameters of its own, like the Postgres queue's ack (id, lease).
ACK_SQL = "DELETE FROM inbox WHERE id = $1 AND lease = $2"


async def _claim_and_succeed(db: Database, *, fail: bool) -> None:
    async with db.transaction() as tx:
        claimed = await ledger.claim(
            tx,
            job="j",
            slot=SLOT,
            attempt=1,
            message_id="m1",
            started_at=NOW,
            timeout_seconds=30,
            lock=False,
        )
        assert claimed is not None and claimed.final is None
        ledger.succeed(
            tx,
            job="j",
            slot=SLOT,
            attempt=1,
            message_id="m1",
            started_at=NOW,
            rows=3,
            duration_ms=1.5,
            finished_at=NOW,
            ack=ledger.Ack(ACK_SQL, (2, "lease-b")),
        )
        if fail:
            raise JobFailed("after the success", transient=True, error_class="test")


async def _state(db: Database) -> tuple[list[dict[str, object]], ...]:
    return (
        await db.fetch("SELECT job, slot, status, rows FROM cronwright.runs"),
        await db.fetch("SELECT job, status, rows FROM cronwright.run_history"),
        await db.fetch("SELECT id, lease FROM inbox ORDER BY id"),
    )


def test_the_ack_commits_with_the_success_and_deletes_only_its_own_row(pg_dsn: str) -> None:
    async def main() -> None:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn) as db:
            async with db.transaction() as tx:
                await tx.execute("CREATE TABLE inbox (id int PRIMARY KEY, lease text)")
                await tx.execute(
                    "INSERT INTO inbox VALUES (1, 'lease-b'), (2, 'lease-b'), (3, 'lease-a')"
                )
            await _claim_and_succeed(db, fail=False)
            runs, history, inbox = await _state(db)
        assert runs == [{"job": "j", "slot": SLOT, "status": "succeeded", "rows": 3}]
        assert history == [{"job": "j", "status": "succeeded", "rows": 3}]
        assert inbox == [{"id": 1, "lease": "lease-b"}, {"id": 3, "lease": "lease-a"}]

    run(main())


def test_a_rolled_back_success_leaves_the_ack_undone(pg_dsn: str) -> None:
    async def main() -> None:
        await migrate_url(pg_dsn, None)
        async with Database.open(pg_dsn) as db:
            async with db.transaction() as tx:
                await tx.execute("CREATE TABLE inbox (id int PRIMARY KEY, lease text)")
                await tx.execute("INSERT INTO inbox VALUES (2, 'lease-b')")
            with pytest.raises(JobFailed):
                await _claim_and_succeed(db, fail=True)
            assert await _state(db) == ([], [], [{"id": 2, "lease": "lease-b"}])

    run(main())
