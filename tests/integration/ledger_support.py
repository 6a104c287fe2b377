"""A probe job whose effect is computed from a source table (so a rerun has something to
recompute), with an independent oracle, and a switch that makes it fail permanently."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.core.times import iso
from tests.integration.executor_support import Harness

# probe.src is the source; probe.rollup(slot, total, n) the job's effect, recomputed from
# the source in full by every run. probe.modes records the template's `rerun` flag.
# While probe.broken holds a row, probe.check() raises a permanent error (SQLSTATE 22012).
SOURCE_SETUP = """
CREATE TABLE probe.src (slot timestamptz NOT NULL, amount integer NOT NULL);
CREATE TABLE probe.rollup (slot timestamptz PRIMARY KEY, total bigint NOT NULL, n bigint NOT NULL);
CREATE TABLE probe.modes (rerun boolean NOT NULL);
CREATE TABLE probe.broken (why text);
CREATE TABLE probe.sleeps (seconds double precision NOT NULL);
INSERT INTO probe.sleeps VALUES (0);
CREATE FUNCTION probe.check() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM probe.broken) THEN
        RAISE EXCEPTION 'probe is broken' USING ERRCODE = 'division_by_zero';
    END IF;
    RETURN 1;
END $$;
"""

ROLLUP_SQL = """
SELECT probe.check();
SELECT pg_sleep(seconds) FROM probe.sleeps;
INSERT INTO probe.rollup (slot, total, n)
SELECT {{ window_start }}, coalesce(sum(amount), 0), count(*) FROM probe.src
WHERE slot = {{ window_start }}
ON CONFLICT (slot) DO UPDATE SET total = EXCLUDED.total, n = EXCLUDED.n;
INSERT INTO probe.modes VALUES ({{ rerun }});
UPDATE probe.counter SET n = n + 1;
"""


async def setup(h: Harness) -> None:
    async with h.db.transaction() as tx:
        await tx.script(SOURCE_SETUP)


async def add_source(h: Harness, rows: list[tuple[datetime, int]]) -> None:
    async with h.db.transaction() as tx:
        for slot, amount in rows:
            await tx.execute("INSERT INTO probe.src VALUES ($1, $2)", slot, amount)


def oracle(rows: list[tuple[datetime, int]]) -> dict[datetime, tuple[int, int]]:
    """Per window start: (sum, count) over the source rows, computed in Python."""
    out: dict[datetime, tuple[int, int]] = {}
    for slot, amount in rows:
        total, n = out.get(slot, (0, 0))
        out[slot] = (total + amount, n + 1)
    return out


async def rollup(h: Harness) -> dict[datetime, tuple[int, int]]:
    rows = await h.query("SELECT slot, total, n FROM probe.rollup")
    return {r["slot"]: (int(r["total"]), int(r["n"])) for r in rows}


async def history(h: Harness) -> list[dict[str, Any]]:
    """Every attempt, oldest first, with whether it is the slot's current run."""
    return await h.query(
        "SELECT h.job, h.slot, h.status, h.attempt, h.rerun_id, h.error_class,"
        " h.run_id = r.run_id IS TRUE AS current"
        " FROM cronwright.run_history AS h"
        " LEFT JOIN cronwright.runs AS r ON (r.job, r.slot) = (h.job, h.slot)"
        " ORDER BY h.run_id"
    )


def rerun_body(type_: str, slot: datetime, rerun: str) -> str:
    return json.dumps({"type": type_, "scheduledFor": iso(slot), "rerun": rerun})
