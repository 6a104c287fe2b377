"""Healthcheck pings (their URLs, Healthchecks.io and Cronitor style; what each attempt
pings, keyed by the attempt) and the outbox's backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from devtools.manifests import probe_manifest
from engine.core.job import Job
from engine.runtime import outbox, retry
from engine.runtime.outcome import Outcome, Status
from engine.runtime.pings import MAX_PENDING, Pings, Request, request

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CHECKED = Job(
    name="rollup",
    type="rollup",
    cron="* * * * *",
    sql="sql/rollup.sql",
    healthcheck="https://hc-ping.com/${HC_UUID}",
)
PLAIN = Job(name="plain", type="plain", cron="* * * * *", sql="sql/plain.sql")


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        (
            "https://hc-ping.com/abc",
            "ping_start",
            Request("POST", "https://hc-ping.com/abc/start", "text"),
        ),
        (
            "https://hc-ping.com/abc/",
            "ping_success",
            Request("POST", "https://hc-ping.com/abc/", "text"),
        ),
        (
            "https://hc-ping.com/abc/",
            "ping_fail",
            Request("POST", "https://hc-ping.com/abc/fail", "text"),
        ),
        (
            "https://hc.example.org/ping/key/slug?create=1",
            "ping_start",
            Request("POST", "https://hc.example.org/ping/key/slug/start?create=1", "text"),
        ),
        (
            "https://cronitor.link/p/KEY/nightly",
            "ping_start",
            Request("GET", "https://cronitor.link/p/KEY/nightly?state=run&message=text", None),
        ),
        (
            "https://cronitor.link/p/KEY/nightly?env=prod&state=x",
            "ping_success",
            Request(
                "GET",
                "https://cronitor.link/p/KEY/nightly?env=prod&state=complete&message=text",
                None,
            ),
        ),
        (
            "https://eu.cronitor.link/p/KEY/nightly",
            "ping_fail",
            Request("GET", "https://eu.cronitor.link/p/KEY/nightly?state=fail&message=text", None),
        ),
    ],
)
def test_a_ping_is_the_request_its_service_expects(url: str, kind: str, expected: Request) -> None:
    assert request(url, kind, "text") == expected  # type: ignore[arg-type]


def test_a_cronitor_message_is_cut_to_its_limit() -> None:
    got = request("https://cronitor.link/p/K/m", "ping_fail", "x" * 3000)
    assert got.url.endswith("&message=" + "x" * 2000)


def outcome(status: Status, **kw: object) -> Outcome:
    return Outcome(status=status, job="rollup", type="rollup", slot=T0, attempt=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "pinged"),
    [
        ("succeeded", ["ping_start", "ping_success"]),
        ("duplicate", ["ping_start", "ping_success"]),
        ("paused", ["ping_start", "ping_success"]),
        ("superseded", ["ping_start", "ping_success"]),
        ("dead_lettered", ["ping_start", "ping_fail"]),
        ("retry", ["ping_start"]),  # the retry's own /start follows
    ],
)
def test_each_attempt_pings_its_start_and_how_the_slot_ended(
    status: Status, pinged: list[str]
) -> None:
    woken: list[int] = []
    pings = Pings(probe_manifest(CHECKED, PLAIN), wake=lambda: woken.append(1))
    pings.started(CHECKED, T0, 2, "msg-17")
    pings.finished(
        CHECKED, T0, 2, "msg-17", outcome(status, reason="why", error_class="data_exception")
    )
    got = pings.take()
    assert [p.kind for p in got] == pinged
    assert {p.key[1:] for p in got} == {
        ("rollup 2026-11-02T10:00:00Z msg-17 #2", "https://hc-ping.com/${HC_UUID}")
    }
    assert all(p.ordered for p in got) and len(woken) == len(pinged)
    assert pings.take() == []


def test_a_fail_ping_carries_the_reason_and_a_job_without_a_healthcheck_pings_nothing() -> None:
    pings = Pings(probe_manifest(CHECKED, PLAIN))
    pings.started(PLAIN, T0, 1, "m")
    pings.finished(
        CHECKED,
        T0,
        1,
        "m",
        outcome("dead_lettered", reason="permanent error: boom", error_class="data_exception"),
    )
    (fail,) = pings.take()
    assert fail.body == (
        "cronwright: rollup, slot 2026-11-02T10:00:00Z, attempt 1: dead-lettered:"
        " permanent error: boom (data_exception)"
    )
    assert not Pings(probe_manifest(PLAIN))


def test_a_fail_ping_hides_the_servers_detail() -> None:
    pings = Pings(probe_manifest(CHECKED))
    why = "permanent error: unique_violation (23505): dup DETAIL: Key (email)=(a@b.c) exists."
    pings.finished(CHECKED, T0, 1, "m", outcome("dead_lettered", reason=why, error_class="x"))
    assert pings.take()[0].body.endswith(
        "dead-lettered: permanent error: unique_violation (23505): dup"
        " (DETAIL hidden; --verbose shows it) (x)"
    )


def test_pings_past_the_cap_drop_the_oldest_and_are_counted() -> None:
    pings = Pings(probe_manifest(CHECKED))
    for i in range(MAX_PENDING + 3):
        pings.started(CHECKED, T0, 1, f"m{i}")
    got = pings.take()
    assert len(got) == MAX_PENDING and pings.dropped == 3
    assert got[0].subject.endswith(" m3 #1")
    pings.put_back(got[:2])
    pings.started(CHECKED, T0, 1, "new")
    assert [p.subject.split(" ")[2] for p in pings.take()] == ["m3", "m4", "new"]


def test_a_failed_send_is_retried_with_doubling_capped_delays_then_given_up() -> None:
    rng = random.Random(7)
    delays = []
    for tries in range(1, 11):
        decision = outbox.next_try(tries, permanent=False, rng=rng)
        if isinstance(decision, retry.Retry):
            delays.append(decision.delay_seconds)
        else:
            assert tries == 10
            assert decision == retry.GiveUp("gave up after 10 of 10 attempts")
    assert delays == [30, 60, 120, 240, 480, 900, 900, 900, 900]  # 75 minutes of trying


def test_a_permanent_failure_is_given_up_at_once() -> None:
    assert outbox.next_try(1, permanent=True, rng=random.Random()) == retry.GiveUp(
        "permanent error"
    )


def test_the_backoff_can_be_shortened() -> None:
    quick = outbox.policy(tries=3, first_delay_seconds=1)
    rng = random.Random(7)
    assert outbox.next_try(1, permanent=False, rng=rng, policy=quick) == retry.Retry(1.0)
    assert outbox.next_try(2, permanent=False, rng=rng, policy=quick) == retry.Retry(2.0)
    assert isinstance(outbox.next_try(3, permanent=False, rng=rng, policy=quick), retry.GiveUp)
