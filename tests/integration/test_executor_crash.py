"""Crash atomicity: a runtime process killed (SIGKILL) at any point leaves either the
slot's whole effect with its succeeded ledger row, or neither.

The runtime runs in a child process (``python -m`` this module), so the kill is real:
no ``finally``, no rollback from the client, just a dropped connection.

A SQL job's transaction is one statement (cronwright.run_slot), so once it has started
the server finishes it whether or not its client is still there: by default a kill
mid-run leaves both. A server that checks its clients (``client_connection_check_interval``)
ends the run when the client is gone and rolls it back: neither. Both are tested."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.adapters.pg import Database
from engine.runtime.deadletters import PgDeadLetters
from engine.runtime.executor import Executor
from engine.runtime.metrics import Collect
from tests.fixtures.aio import run
from tests.integration.executor_support import (
    SLOT,
    FakeClock,
    RecordingSleep,
    backend_sleeping,
    body,
    harness,
    make_job,
    make_manifest,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
APP = "cronwright-crash-child"

# The effect is written by a statement that first sleeps, then the transaction sleeps
# again before the ledger row is marked succeeded: two windows to be killed in.
CRASH_SQL = """
INSERT INTO probe.effects (slot, value)
SELECT {{ window_start }}, 'crash:effect' FROM pg_sleep({{ params.before }});
UPDATE probe.counter SET n = n + 1;
SELECT 'crash:after', pg_sleep({{ params.after }});
"""
JOB = make_job(name="crashy", params={"before": 0.4, "after": 0.4})


async def child(dsn: str, slot: datetime) -> None:
    async with Database.open(dsn, max_size=1) as db:
        executor = Executor(
            db=db,
            manifest=make_manifest(JOB),
            templates={JOB.template: CRASH_SQL},
            actions={},
            dead_letters=PgDeadLetters(db),
            metrics=Collect(),
            clock=FakeClock(slot + timedelta(minutes=5)),
            sleep=RecordingSleep(),
            rng=random.Random(0),
        )
        outcome = await executor.handle(body(JOB, slot), message_id="crash", attempt=1)
        print(outcome.status, flush=True)


# The child's session checks every 20 ms that its client is still connected.
CHECKING = "&client_connection_check_interval=20ms"


def spawn(dsn: str, slot: datetime, settings: str = "") -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CRASH_DSN": f"{dsn}?application_name={APP}{settings}",
        "CRASH_SLOT": slot.isoformat(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_executor_crash"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def child_backends_gone(db: Database, timeout: float = 10.0) -> None:
    """Wait until the server has noticed the dead client and ended its transaction."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await db.fetch(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", APP
        )
        if rows[0]["n"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the child's backend was still there after {timeout}s")


async def state(db: Database, slot: datetime) -> tuple[bool, bool]:
    effect = await db.fetch(
        "SELECT 1 FROM probe.effects WHERE slot = $1", slot - timedelta(hours=1)
    )
    ledger = await db.fetch(
        "SELECT 1 FROM cronwright.runs WHERE job = $1 AND slot = $2 AND status = 'succeeded'",
        JOB.name,
        slot,
    )
    return bool(effect), bool(ledger)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate(timeout=10)


@pytest.mark.parametrize(
    ("holding", "settings", "expected"),
    [
        # Asleep in the effect's statement, or in the last one (the counter's row updated).
        (None, "", (True, True)),
        ("probe.counter", "", (True, True)),
        (None, CHECKING, (False, False)),
        ("probe.counter", CHECKING, (False, False)),
    ],
    ids=[
        "while-writing-the-effect",
        "after-the-effect-before-the-ledger",
        "while-writing-the-effect-on-a-server-that-checks-its-clients",
        "after-the-effect-on-a-server-that-checks-its-clients",
    ],
)
def test_process_killed_mid_run_leaves_effect_and_ledger_row_together_or_neither(
    pg_dsn: str, holding: str | None, settings: str, expected: tuple[bool, bool]
) -> None:
    async def main() -> None:
        async with harness(pg_dsn, [(JOB, CRASH_SQL)]) as h:
            proc = spawn(pg_dsn, SLOT, settings)
            try:
                await backend_sleeping(h.db, holding=holding, timeout=30)
            finally:
                kill(proc)
            await child_backends_gone(h.db)
            assert await state(h.db, SLOT) == expected
            assert await h.counter() == int(expected[0])
            # The redelivery runs the slot if the killed run did not, exactly once.
            outcome = await h.executor.handle(body(JOB), message_id="again", attempt=2)
            assert outcome.status == ("duplicate" if expected[0] else "succeeded")
            assert await state(h.db, SLOT) == (True, True)
            assert await h.counter() == 1

    run(main())


def test_process_that_finished_leaves_effect_and_ledger_row_together(pg_dsn: str) -> None:
    async def main() -> None:
        async with harness(pg_dsn, [(JOB, CRASH_SQL)]) as h:
            proc = spawn(pg_dsn, SLOT)
            out, err = await asyncio.to_thread(proc.communicate, timeout=60)
            assert (proc.returncode, out.strip()) == (0, "succeeded"), err
            assert await state(h.db, SLOT) == (True, True)

    run(main())


def test_process_killed_at_any_moment_leaves_effect_and_ledger_row_together_or_neither(
    pg_dsn: str,
) -> None:
    # On a server that checks its clients, so that a kill before the commit rolls back.
    # Kill delays count from the moment the child's transaction is running its SQL (not
    # from spawn, which a loaded machine stretches), through the commit (~0.8 s) and past it.
    delays = [0.0, 0.2, 0.5, 0.7, 0.9, 3.0]
    slots = [SLOT - timedelta(hours=i) for i in range(len(delays))]

    async def main() -> list[tuple[bool, bool]]:
        seen = []
        async with harness(pg_dsn, [(JOB, CRASH_SQL)]) as h:
            for delay, slot in zip(delays, slots, strict=True):
                proc = spawn(pg_dsn, slot, CHECKING)
                try:
                    await backend_sleeping(h.db, timeout=30)
                    await asyncio.sleep(delay)
                finally:
                    kill(proc)
                await child_backends_gone(h.db)
                effect, ledger = await state(h.db, slot)
                assert effect == ledger, f"killed after {delay}s: effect={effect} ledger={ledger}"
                seen.append((effect, ledger))
            assert await h.counter() == sum(effect for effect, _ in seen)
        return seen

    seen = run(main())
    # Both outcomes happened, so the kills really landed before and after the commit.
    assert seen[0] == (False, False) and seen[-1] == (True, True), seen


if __name__ == "__main__":
    asyncio.run(
        child(
            os.environ["CRASH_DSN"],
            datetime.fromisoformat(os.environ["CRASH_SLOT"]).astimezone(UTC),
        )
    )
