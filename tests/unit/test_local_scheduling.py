"""The local scheduler's pure parts: the due slots between two ticks, waking when a slot
is due (on a fake clock), and the transport choice. (The cron flag's one reading is tested in tests/integration/test_cron_flag.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.app.scheduler import Scheduler
from engine.app.transports import configured
from engine.core.errors import ConfigError
from engine.core.model import Transport
from engine.manifest.loader import load
from engine.runtime.dispatch import Slot
from engine.runtime.ports import Db
from tests.fixtures.aio import run
from tests.fixtures.memstore import MemoryStore

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 10, 31, 0, 0, tzinfo=UTC)


def scheduler(manifest_path: Path = REPO / "jobs.yaml") -> Scheduler:
    manifest = load(manifest_path)
    return Scheduler(
        db=None,  # type: ignore[arg-type]  (due_between reads no database)
        store=None,  # type: ignore[arg-type]
        manifest=manifest,
        sender=None,  # type: ignore[arg-type]
        clock=lambda: T0,
        sleep=None,  # type: ignore[arg-type]
        environ={},
    )


def test_due_slots_between_two_ticks_follow_each_jobs_own_schedule() -> None:
    due = scheduler().due_between(T0, T0 + timedelta(hours=5))
    # Independently: hourly fires at 01..05, the daily jobs at 02:00, 04:00 and 05:00;
    # the slot at T0 itself is not after T0.
    expected = [(T0 + timedelta(hours=h), "aggregate-hourly") for h in range(1, 6)]
    expected += [
        (T0 + timedelta(hours=2), "generate-daily-reports"),
        (T0 + timedelta(hours=4), "score-distribution"),
        (T0 + timedelta(hours=5), "enrichment-metrics"),
    ]
    assert [(s.slot, s.job.name) for s in due] == sorted(expected)


def test_the_transport_comes_from_the_flag_then_the_environment_then_the_manifest() -> None:
    with_worker = load(REPO / "jobs.yaml")
    serve_only = replace(with_worker, transport=Transport.POSTGRES)
    assert configured("postgres", with_worker, {"CRONWRIGHT_TRANSPORT": "cloudflare"}) == "postgres"
    assert configured(None, with_worker, {"CRONWRIGHT_TRANSPORT": "postgres"}) == "postgres"
    assert configured(None, with_worker, {}) == "cloudflare"
    assert configured(None, serve_only, {}) == "postgres"


def test_cloudflare_is_refused_from_the_flag_or_the_environment_without_a_worker_block() -> None:
    serve_only = replace(load(REPO / "jobs.yaml"), cloudflare=False, transport=Transport.POSTGRES)
    for flag, env, source in [
        ("cloudflare", {}, "--transport"),
        (None, {"CRONWRIGHT_TRANSPORT": " Cloudflare"}, "CRONWRIGHT_TRANSPORT"),
    ]:
        with pytest.raises(ConfigError) as err:
            configured(flag, serve_only, env)
        assert str(err.value) == (
            f"transport cloudflare (from {source}) needs the Worker that sends slots to the"
            " queue, and this manifest has no 'worker:' block; add a 'worker:' block to the"
            " manifest, or use --transport postgres"
        )


def test_an_unknown_transport_in_the_environment_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError) as err:
        configured(None, load(REPO / "jobs.yaml"), {"CRONWRIGHT_TRANSPORT": "sqs"})
    assert str(err.value) == (
        "unknown transport 'sqs' (from CRONWRIGHT_TRANSPORT); use one of: cloudflare, postgres"
    )


def test_serve_and_enqueue_are_commands_with_their_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--consumers",
        "--metrics-port",
        "--metrics-host",
        "--grace-seconds",
        "--drain-seconds",
        "--lease-seconds",
        "--reconcile-interval",
        "--log-level",
    ):
        assert option in out
    with pytest.raises(SystemExit):
        main(["consume", "--help"])
    assert "--transport {cloudflare,postgres}" in capsys.readouterr().out


def test_consume_on_the_postgres_queue_refuses_the_cloudflare_pull_bounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["-m", str(REPO / "jobs.yaml"), "consume", "--transport", "postgres", "--once"]) == 2
    )
    assert capsys.readouterr().err == (
        "error: --once and --max-batches bound pulls from Cloudflare, not the postgres queue;"
        " stop a postgres consumer with SIGTERM\n"
    )


class RecordingSender:
    """A Sender that keeps what each tick gave it and stops the scheduler after three."""

    transport = "postgres"
    batch = 1000

    def __init__(self) -> None:
        self.ticks: list[tuple[datetime, list[Slot]]] = []
        self.scheduler: Scheduler | None = None
        self.clock: FakeClock | None = None

    async def send_batch(
        self, db: Db, slots: Sequence[Slot], *, source: str, force: bool, by: str | None
    ) -> list[Slot]:
        assert self.clock is not None and self.scheduler is not None
        self.ticks.append((self.clock.now, list(slots)))
        if len(self.ticks) == 3:
            self.scheduler.stop()
        return list(slots)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_the_scheduler_sleeps_until_the_next_slot_is_due_and_ticks_right_at_it() -> None:
    # Independently: from 00:59:17.25 the hourly job's next slot is 01:00, then 02:00, 03:00.
    clock = FakeClock(T0 + timedelta(minutes=59, seconds=17.25))
    sender = RecordingSender()
    manifest = load(REPO / "jobs.yaml")
    hourly = manifest.find_job("aggregate-hourly")
    s = Scheduler(
        db=None,  # type: ignore[arg-type]  (the sender claims, here in memory)
        store=MemoryStore(),
        manifest=replace(manifest, jobs=(hourly,)),
        sender=sender,
        clock=clock,
        sleep=clock.sleep,
        environ={},
    )
    sender.scheduler, sender.clock = s, clock
    run(s.run())
    hours = [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    assert clock.sleeps == [42.75, 3600.0, 3600.0]
    assert sender.ticks == [(t, [Slot(hourly, t)]) for t in hours]
