"""Every job of the real jobs.yaml runs through the executor on the real schema: its
template renders, binds and commits with its ledger row, and a replay is a duplicate.
(The jobs' results are checked against Python in the job-correctness tests.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine import manifest
from engine.app import wiring
from engine.core.model import Job
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = manifest.load(str(ROOT / "jobs.yaml"))
NOW = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("job", MANIFEST.jobs, ids=lambda j: j.name)
def test_real_job_runs_once_per_slot_through_the_executor(
    pg_dsn: str, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A half-configured R2 must not matter when the caller brings its own actions.
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "only-the-key-id")
    calls: list[datetime] = []

    async def action(rows: Sequence[Mapping[str, Any]], slot: datetime) -> int:
        calls.append(slot)
        return len(rows)

    actions = {j.action.name: action for j in MANIFEST.jobs if j.action is not None}

    async def main() -> None:
        outcomes = [
            await wiring.run_job(
                MANIFEST,
                job.type,
                dsn=pg_dsn,
                actions=actions,
                metrics=Collect(),
                clock=lambda: NOW,
            )
            for _ in range(2)
        ]
        assert [(o.status, o.error_class) for o in outcomes] == [
            ("succeeded", None),
            ("duplicate", None),
        ]
        rows = await wiring.list_runs(pg_dsn, job=job.name)
        assert [(r["slot"], r["status"], r["attempt"]) for r in rows] == [
            (outcomes[0].slot, "succeeded", 1)
        ]

    run(main())
    assert len(calls) == (1 if job.action is not None else 0)
