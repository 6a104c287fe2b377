"""The executor on a real Postgres: exactly one effect per slot, however often it arrives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.core.model import Overlap
from engine.runtime.metrics import MetricRecord
from tests.fixtures.aio import run
from tests.integration.executor_support import EFFECT_SQL, SLOT, body, harness, make_job

pytestmark = pytest.mark.postgres

PROBE = make_job()


def test_first_delivery_runs_the_slot_and_records_it_in_the_ledger(pg_dsn: str) -> None:
    async def main() -> None:
        async with harness(pg_dsn, [(PROBE, EFFECT_SQL)]) as h:
            outcome = await h.executor.handle(body(PROBE), message_id="m-1", attempt=1)
            assert (outcome.status, outcome.job, outcome.slot, outcome.rows) == (
                "succeeded",
                "probe",
                SLOT,
                2,
            )
            effects = await h.query("SELECT slot, value FROM probe.effects")
            assert effects == [{"slot": SLOT - timedelta(hours=1), "value": "v"}]
            assert await h.ledger() == [
                {
                    "job": "probe",
                    "slot": SLOT,
                    "status": "succeeded",
                    "attempt": 1,
                    "rows": 2,
                    "error_class": None,
                    "error": None,
                    "message_id": "m-1",
                }
            ]

    run(main())


def test_duplicate_delivery_of_a_succeeded_slot_does_nothing_and_reports_duplicate(
    pg_dsn: str,
) -> None:
    async def main() -> None:
        async with harness(pg_dsn, [(PROBE, EFFECT_SQL)]) as h:
            first = await h.executor.handle(body(PROBE), message_id="m-1", attempt=1)
            ledger_before = await h.ledger()
            again = await h.executor.handle(body(PROBE), message_id="m-2", attempt=1)
            late = await h.executor.handle(body(PROBE), message_id="m-1", attempt=3)
            assert [first.status, again.status, late.status] == [
                "succeeded",
                "duplicate",
                "duplicate",
            ]
            assert (again.rows, late.rows) == (None, None)
            assert await h.counter() == 1
            assert await h.ledger() == ledger_before
            assert [r.status for r in h.metrics.records] == ["succeeded", "duplicate", "duplicate"]

    run(main())


@pytest.mark.parametrize("overlap", [Overlap.FORBID, Overlap.ALLOW])
def test_three_concurrent_deliveries_of_one_slot_run_it_once(pg_dsn: str, overlap: Overlap) -> None:
    job = make_job(overlap=overlap)
    slow = EFFECT_SQL + "SELECT pg_sleep(0.3);\n"

    async def main() -> None:
        async with harness(pg_dsn, [(job, slow)]) as h:
            outcomes = await asyncio.gather(
                *(h.executor.handle(body(job), message_id=f"m-{i}", attempt=1) for i in range(3))
            )
            assert sorted(o.status for o in outcomes) == ["duplicate", "duplicate", "succeeded"]
            assert await h.counter() == 1
            assert [r["status"] for r in await h.ledger()] == ["succeeded"]

    run(main())


# Each run sleeps long enough that two concurrent runs overlap even on a loaded machine.
INTERVAL_SQL = """
INSERT INTO probe.intervals (slot, started) VALUES ({{ slot }}, clock_timestamp());
SELECT pg_sleep(1);
UPDATE probe.intervals SET finished = clock_timestamp() WHERE slot = {{ slot }};
"""


def overlapping(rows: Sequence[Mapping[str, Any]]) -> bool:
    (a, b) = sorted(rows, key=lambda r: r["started"])
    finished: datetime = a["finished"]
    return bool(b["started"] < finished)


@pytest.mark.parametrize(("overlap", "overlaps"), [(Overlap.FORBID, False), (Overlap.ALLOW, True)])
def test_overlap_policy_decides_whether_two_slots_of_a_job_run_at_once(
    pg_dsn: str, overlap: Overlap, overlaps: bool
) -> None:
    job = make_job(overlap=overlap)

    async def main() -> None:
        async with harness(pg_dsn, [(job, INTERVAL_SQL)]) as h:
            earlier = SLOT - timedelta(hours=1)
            outcomes = await asyncio.gather(
                h.executor.handle(body(job, earlier), message_id="a", attempt=1),
                h.executor.handle(body(job, SLOT), message_id="b", attempt=1),
            )
            assert [o.status for o in outcomes] == ["succeeded", "succeeded"]
            assert overlapping(await h.query("SELECT * FROM probe.intervals")) is overlaps

    run(main())


def test_each_delivery_emits_one_metric_record_with_its_outcome(pg_dsn: str) -> None:
    async def main() -> None:
        async with harness(pg_dsn, [(PROBE, EFFECT_SQL)]) as h:
            await h.executor.handle(body(PROBE), message_id="m-1", attempt=2)
            await h.executor.handle(body(PROBE), message_id="m-2", attempt=1)
            await h.executor.handle("{", message_id="m-3", attempt=1)
            records = h.metrics.records
            assert [(r.message_id, r.status, r.rows, r.error_class) for r in records] == [
                ("m-1", "succeeded", 2, None),
                ("m-2", "duplicate", None, None),
                ("m-3", "dead_lettered", None, "invalid_message"),
            ]
            first: MetricRecord = records[0]
            line = json.loads(first.to_json())
            assert set(line) == {
                "queue",
                "messageId",
                "status",
                "eventType",
                "durationMs",
                "attempt",
                "slot",
                "rows",
                "errorClass",
            }
            assert (line["queue"], line["eventType"], line["attempt"], line["slot"]) == (
                "probe-jobs",
                "test.probe",
                2,
                "2026-10-31T10:00:00Z",
            )
            assert all(r.duration_ms > 0 for r in records)

    run(main())


def test_bind_parameter_value_is_stored_as_data(pg_dsn: str) -> None:
    hostile = "'); DROP TABLE probe.counter; --"
    job = make_job(params={"value": hostile})

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert outcome.status == "succeeded"
            assert await h.query("SELECT value FROM probe.effects") == [{"value": hostile}]
            assert await h.counter() == 1

    run(main())


ACTION_SQL = """
SELECT 'org-' || n AS organization_id, 'd' || n || '.example' AS domain
FROM generate_series(1, 3) AS n ORDER BY n;
"""


def test_action_job_passes_the_selected_rows_to_its_action(pg_dsn: str) -> None:
    job = make_job(name="reset", action="reset-counters")
    seen: list[tuple[list[dict[str, Any]], datetime]] = []

    async def reset(rows: Sequence[Mapping[str, Any]], slot: datetime) -> int:
        seen.append(([dict(r) for r in rows], slot))
        return len(rows) - 1

    async def main() -> None:
        async with harness(pg_dsn, [(job, ACTION_SQL)], actions={"reset-counters": reset}) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.rows) == ("succeeded", 2)
            again = await h.executor.handle(body(job), message_id="m2", attempt=1)
            assert again.status == "duplicate"
            assert [r["rows"] for r in await h.ledger()] == [2]

    run(main())
    assert seen == [
        (
            [
                {"organization_id": "org-1", "domain": "d1.example"},
                {"organization_id": "org-2", "domain": "d2.example"},
                {"organization_id": "org-3", "domain": "d3.example"},
            ],
            SLOT,
        )
    ]


def test_action_job_without_its_action_is_dead_lettered_with_the_reason(pg_dsn: str) -> None:
    job = make_job(name="reset", action="reset-counters")

    async def main() -> None:
        async with harness(pg_dsn, [(job, ACTION_SQL)]) as h:
            outcome = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (outcome.status, outcome.error_class, outcome.reason) == (
                "dead_lettered",
                "config_error",
                "permanent error: job reset needs the action 'reset-counters', "
                "which is not configured",
            )
            assert [r["status"] for r in await h.ledger()] == ["dead_lettered"]

    run(main())


def test_manual_enqueue_runs_the_latest_slot(pg_dsn: str) -> None:
    async def main() -> None:
        async with harness(pg_dsn, [(PROBE, EFFECT_SQL)]) as h:
            h.clock.now = SLOT + timedelta(minutes=59)
            outcome = await h.executor.handle('{"type": "test.probe"}', message_id="m", attempt=1)
            assert (outcome.status, outcome.slot) == ("succeeded", SLOT)

    run(main())


def test_a_slot_just_ahead_of_our_clock_is_handed_back_until_it_is_due(pg_dsn: str) -> None:
    job = make_job()

    async def main() -> None:
        async with harness(pg_dsn, [(job, EFFECT_SQL)]) as h:
            h.clock.now = SLOT - timedelta(seconds=20)
            early = await h.executor.handle(body(job), message_id="m", attempt=1)
            assert (early.status, early.delay_seconds, early.error_class) == (
                "retry",
                21.0,
                "slot_not_due",
            )
            assert await h.ledger() == [] and await h.counter() == 0
            h.clock.now = SLOT + timedelta(seconds=5)
            due = await h.executor.handle(body(job), message_id="m", attempt=2)
            assert due.status == "succeeded" and await h.counter() == 1

    run(main())
