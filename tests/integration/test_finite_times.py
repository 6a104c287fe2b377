"""Times read back from Postgres are aware and finite: migration 0011's constraints on
every cronwright time column (and what it does to rows already outside them), the
adapter's timestamptz codec, and dead-letter replay refusing a slot outside the range."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devtools.manifests import probe_manifest
from engine.adapters.migrate import apply, engine_migrations
from engine.adapters.pg import Database
from engine.app import operator
from engine.core.errors import DatabaseError
from tests.fixtures.aio import run
from tests.fixtures.postgres import PgServer, admin
from tests.integration.executor_support import make_job

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 10, 31, 10, 5, tzinfo=UTC)


async def fetch(dsn: str, sql: str, *args: object) -> list[dict[str, object]]:
    async with Database.open(dsn, max_size=1) as db:
        return await db.fetch(sql, *args)


def test_every_time_column_of_cronwright_holds_only_readable_instants(pg_dsn: str) -> None:
    columns = run(
        fetch(
            pg_dsn,
            """
            SELECT c.table_name || '.' || c.column_name AS col,
                   (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint AS k
                    WHERE k.conrelid = ('cronwright.' || c.table_name)::regclass
                      AND k.conname = c.table_name || '_' || c.column_name || '_sane') AS rule
            FROM information_schema.columns AS c
            WHERE c.table_schema = 'cronwright' AND c.data_type = 'timestamp with time zone'
            ORDER BY 1
            """,
        )
    )
    assert len(columns) >= 18
    for c in columns:
        name = str(c["col"]).split(".")[1]
        assert c["rule"] == (
            f"CHECK ((({name} >= '1970-01-01 00:00:00+00'::timestamp with time zone) AND"
            f" ({name} < '10000-01-01 00:00:00+00'::timestamp with time zone)))"
        ), c


def test_an_infinite_slot_is_refused_by_the_database_whoever_writes_it(pg_dsn: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        run(
            fetch(
                pg_dsn,
                "INSERT INTO cronwright.dispatched (job, slot, source, transport)"
                " VALUES ('j', '-infinity', 'enqueue', 'postgres') RETURNING job",
            )
        )
    assert str(caught.value).split(" DETAIL: ")[0] == (
        'integrity_constraint_violation (23514): new row for relation "dispatched" violates'
        ' check constraint "dispatched_slot_sane"'
    )
    assert not caught.value.transient


def test_times_read_back_are_aware_and_written_as_the_instant_they_are(pg_dsn: str) -> None:
    plus_two = datetime(2026, 10, 31, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    earliest = datetime(1, 1, 1, tzinfo=UTC)  # asyncpg's own codec wrote it as -infinity
    latest = datetime.max.replace(tzinfo=UTC)  # ... and this one as infinity
    [row] = run(
        fetch(
            pg_dsn,
            "SELECT $1::timestamptz AS a, $2::timestamptz::text AS b, $3::timestamptz::text AS c,"
            " ARRAY['2026-10-31 10:00+00', '1970-01-01 00:00+00']::timestamptz[] AS d,"
            " '2026-10-31 10:00:00.123456+05'::timestamptz AS e",
            plus_two,
            earliest,
            latest,
        )
    )
    assert row["a"] == datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
    assert row["a"].tzinfo is not None  # type: ignore[attr-defined]
    assert (row["b"], row["c"]) == ("0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00")
    assert row["d"] == [datetime(2026, 10, 31, 10, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
    assert row["e"] == datetime(2026, 10, 31, 5, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        (
            "-infinity",
            "timestamptz -infinity has no Python value: cronwright reads finite times only",
        ),
        (
            "infinity",
            "timestamptz infinity has no Python value: cronwright reads finite times only",
        ),
        (
            "0044-03-15 00:00:00+00 BC",
            "a timestamptz outside the years 1 to 9999 has no Python value: cronwright reads"
            " finite times only",
        ),
    ],
)
def test_a_time_python_cannot_hold_is_a_database_error_never_a_naive_value(
    pg_dsn: str, literal: str, message: str
) -> None:
    async def main() -> list[dict[str, object]]:
        async with Database.open(pg_dsn, max_size=1) as db:
            with pytest.raises(DatabaseError) as caught:
                await db.fetch(f"SELECT '{literal}'::timestamptz AS t")
            assert str(caught.value) == f"data_exception (22008): {message}"
            assert not caught.value.transient
            return await db.fetch("SELECT 1 AS still_usable")

    assert run(main()) == [{"still_usable": 1}]


@pytest.fixture
def before_0011(pg_server: PgServer) -> Iterator[str]:
    """A database migrated up to (not including) 0011."""
    name = f"finite_{uuid.uuid4().hex[:12]}"
    run(admin(pg_server, f'CREATE DATABASE "{name}"'))
    dsn = pg_server.dsn(name)
    try:

        async def migrate() -> None:
            async with Database.open(dsn, max_size=1) as db:
                await apply(db, [m for m in engine_migrations() if m.name < "0011"])

        run(migrate())
        yield dsn
    finally:
        run(admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BAD_ROWS = """
INSERT INTO cronwright.dispatched (job, slot, source, transport) VALUES
    ('probe', '-infinity', 'enqueue', 'postgres'),
    ('probe', '2026-10-31 10:00+00', 'scheduler', 'postgres');
INSERT INTO cronwright.runs (job, slot, status, attempt, started_at, run_id) VALUES
    ('probe', '-infinity', 'failed', 1, now(), 1),
    ('probe', '2026-10-31 10:00+00', 'succeeded', 1, '-infinity', 2);
INSERT INTO cronwright.run_history
    (run_id, job, slot, status, attempt, started_at, finished_at) VALUES
    (1, 'probe', '-infinity', 'failed', 1, now(), now());
INSERT INTO cronwright.queue (queue, body, job, slot, visible_at, enqueued_at) VALUES
    ('probe-jobs', '{"type": "test.probe", "scheduledFor": "0001-01-01T00:00:00Z"}',
     'probe', '-infinity', '-infinity', now());
INSERT INTO cronwright.dead_letters (job, slot, body, reason, error_class, attempts) VALUES
    ('probe', 'infinity', '{}', 'query_canceled', 'query_canceled', 1);
INSERT INTO cronwright.pauses (job, paused_from, resumed_at) VALUES
    ('probe', '-infinity', 'infinity');
"""


def test_migration_0011_clears_the_times_a_database_already_holds_outside_the_range(
    before_0011: str,
) -> None:
    async def main() -> dict[str, list[dict[str, object]]]:
        async with Database.open(before_0011, max_size=1) as db:
            async with db.transaction() as tx:
                await tx.script(BAD_ROWS)
            applied = await apply(db, engine_migrations())
            assert "engine:0011_finite_times.sql" in applied
            tables = {
                "dispatched": "SELECT job, slot::text FROM cronwright.dispatched",
                "runs": "SELECT slot::text, started_at::text FROM cronwright.runs",
                "run_history": "SELECT run_id FROM cronwright.run_history",
                "queue": "SELECT slot, visible_at::text, body FROM cronwright.queue",
                "dead_letters": "SELECT slot, reason FROM cronwright.dead_letters",
                "pauses": "SELECT paused_from::text, resumed_at::text FROM cronwright.pauses",
            }
            return {name: await db.fetch(sql) for name, sql in tables.items()}

    assert run(main()) == {
        "dispatched": [{"job": "probe", "slot": "2026-10-31 10:00:00+00"}],
        "runs": [{"slot": "2026-10-31 10:00:00+00", "started_at": "1970-01-01 00:00:00+00"}],
        "run_history": [],
        "queue": [
            {
                "slot": None,
                "visible_at": "1970-01-01 00:00:00+00",
                "body": '{"type": "test.probe", "scheduledFor": "0001-01-01T00:00:00Z"}',
            }
        ],
        "dead_letters": [
            {
                "slot": None,
                "reason": "query_canceled (slot infinity removed by migration 0011: outside"
                " 1970-01-01 to 9999-12-31)",
            }
        ],
        "pauses": [
            {"paused_from": "1970-01-01 00:00:00+00", "resumed_at": "9999-12-31 23:59:59+00"}
        ],
    }


def test_replay_skips_a_dead_letter_whose_slot_is_more_than_a_year_ahead(pg_dsn: str) -> None:
    job = make_job()
    [row] = run(
        fetch(
            pg_dsn,
            "INSERT INTO cronwright.dead_letters (job, type, slot, body, reason, error_class,"
            " attempts) VALUES ($1, $2, '2999-01-01 00:00+00', '{}', 'r', 'c', 1) RETURNING id",
            job.name,
            job.type,
        )
    )
    done = run(
        operator.replay_dead_letters(
            probe_manifest(job),
            ids=[int(str(row["id"]))],
            in_place=True,
            dsn=pg_dsn,
            actions={},
            clock=lambda: NOW,
        )
    )
    assert [(r.status, r.detail) for r in done] == [
        (
            "skipped",
            "slot 2999-01-01T00:00:00Z is more than a year after now (2026-10-31T10:05:00Z)",
        )
    ]
