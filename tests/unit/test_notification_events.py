"""When something is told, to whom, and what each notice is keyed by: the pure planner
(engine/runtime/incidents.py) and the notices' texts (engine/runtime/notices.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devtools.manifests import probe_manifest
from engine.core.job import Event, Job, Notify
from engine.core.model import CatchUp, CatchUpPolicy
from engine.runtime import incidents
from engine.runtime.incidents import JobState, plan, to_tell
from engine.runtime.notices import Letter, Notice, Run, target_label

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
OPS = "json://127.0.0.1:9000/ops"
CHAT = "slack://${SLACK_A}/${SLACK_B}/C0123"
PAGER = "json://127.0.0.1:9000/pager"
JOB = Job(name="rollup", type="rollup", cron="* * * * *", sql="sql/rollup.sql", timeout_seconds=60)
MANIFEST = replace(
    probe_manifest(JOB, replace(JOB, name="quiet", type="quiet", notify=())),
    name="shop",
    notify=(Notify(url=OPS), Notify(url=PAGER, events=frozenset({Event.DEAD_LETTER}))),
)


def letter(id_: int, slot: datetime | None = T0, job: str | None = "rollup") -> Letter:
    return Letter(
        id=id_,
        job=job,
        type=job,
        slot=slot,
        reason="permanent error: data_exception (22012): division by zero",
        error_class="data_exception",
        attempts=1,
    )


def ran(run_id: int, slot: datetime, status: str = "succeeded", ms: float = 100.0) -> Run:
    return Run(run_id=run_id, job="rollup", slot=slot, status=status, attempt=1, duration_ms=ms)


def keys(notices: list[Notice]) -> list[tuple[str, str, str]]:
    return [n.key for n in notices]


def test_a_dead_letter_is_told_to_each_target_that_wants_it_keyed_by_the_letter() -> None:
    p = plan(MANIFEST, letters=[letter(7)], runs=[], missing={}, states={}, grace=timedelta())
    assert keys(p.notices) == [
        ("dead_letter", "dead letter 7", OPS),
        ("dead_letter", "dead letter 7", PAGER),
    ]
    assert p.states == {
        "rollup": JobState(
            incidents=1,
            open_since=T0,
            open_kinds=frozenset({"dead_letter"}),
            problem_slot=T0,
        )
    }


def test_a_dead_letter_of_a_silenced_job_is_told_to_no_one() -> None:
    p = plan(
        MANIFEST,
        letters=[letter(7, job="quiet")],
        runs=[],
        missing={},
        states={},
        grace=timedelta(),
    )
    assert p.notices == [] and p.states == {}


def test_a_dead_letter_of_no_known_job_goes_to_the_top_level_targets() -> None:
    poison = replace(letter(9, slot=None, job=None), type="nope")
    p = plan(MANIFEST, letters=[poison], runs=[], missing={}, states={}, grace=timedelta())
    assert keys(p.notices) == [
        ("dead_letter", "dead letter 9", OPS),
        ("dead_letter", "dead letter 9", PAGER),
    ]
    assert p.notices[0].title == "[shop] a message of type 'nope': dead letter"
    assert p.notices[0].body == (
        "a message of type 'nope', no slot (the message names none): dead-lettered after 1"
        " attempt.\n"
        "Reason: permanent error: data_exception (22012): division by zero (data_exception)\n"
        "Look closer: cronwright dead-letters list"
    )


def test_the_dead_letter_message_says_job_slot_reason_and_the_commands() -> None:
    p = plan(MANIFEST, letters=[letter(7)], runs=[], missing={}, states={}, grace=timedelta())
    told = p.notices[0]
    assert (told.kind, told.level, told.job, told.slot) == ("dead_letter", "failure", "rollup", T0)
    assert told.title == "[shop] rollup: dead letter for slot 2026-11-02T10:00:00Z"
    assert told.body == (
        "rollup, slot 2026-11-02T10:00:00Z: dead-lettered after 1 attempt.\n"
        "Reason: permanent error: data_exception (22012): division by zero (data_exception)\n"
        "Look closer: cronwright dead-letters list --job rollup\n"
        "Run it again once fixed: cronwright dead-letters replay 7 --run"
    )


def test_a_long_reason_is_cut_to_a_thousand_characters() -> None:
    long = replace(letter(7), reason="x" * 5000)
    told = plan(MANIFEST, letters=[long], runs=[], missing={}, states={}, grace=timedelta())
    reason = told.notices[0].body.split("Reason: ")[1].split(" (data_exception)")[0]
    assert reason == "x" * 999 + "…"


def test_missing_slots_are_told_once_per_incident_with_every_slot_noticed() -> None:
    slots = [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    first = plan(
        MANIFEST, letters=[], runs=[], missing={"rollup": slots}, states={}, grace=timedelta()
    )
    assert keys(first.notices) == [("missing", "rollup incident 1", OPS)]
    told = first.notices[0]
    assert told.level == "warning"
    assert told.title == "[shop] rollup: 3 slots missing from 2026-11-02T10:00:00Z"
    assert told.body == (
        "rollup: 3 due slots (2026-11-02T10:00:00Z to 2026-11-02T10:02:00Z) were neither sent"
        " nor run, past the grace of 0 s.\n"
        "Reason: nothing sent them: was cronwright (or the Worker) stopped, or its cron flag"
        " off? The reconciler catches up by the job's catch_up policy (all).\n"
        "Look closer: cronwright slots rollup --from 2026-11-02T10:00:00Z"
        " --to 2026-11-02T10:03:00Z"
    )
    state = first.states["rollup"]
    more = [*slots, T0 + 3 * MINUTE]
    again = plan(
        MANIFEST,
        letters=[],
        runs=[],
        missing={"rollup": more},
        states={"rollup": state},
        grace=timedelta(),
    )
    assert again.notices == []  # the same incident: told already
    assert again.states["rollup"].problem_slot == T0 + 3 * MINUTE


def test_recovery_is_told_once_when_the_job_succeeds_at_or_after_its_newest_problem() -> None:
    state = JobState(
        incidents=2, open_since=T0, open_kinds=frozenset({"missing"}), problem_slot=T0 + MINUTE
    )
    before = plan(
        MANIFEST,
        letters=[],
        runs=[ran(1, T0)],  # a catch-up run of an older slot: not yet
        missing={},
        states={"rollup": state},
        grace=timedelta(),
    )
    assert before.notices == [] and before.states == {}
    p = plan(
        MANIFEST,
        letters=[],
        runs=[ran(2, T0 + MINUTE), ran(3, T0 + 2 * MINUTE)],
        missing={},
        states={"rollup": state},
        grace=timedelta(),
    )
    assert keys(p.notices) == [("recovery", "rollup incident 2", OPS)]  # PAGER was not told
    told = p.notices[0]
    assert told.level == "success"
    assert told.title == "[shop] rollup: recovered, slot 2026-11-02T10:01:00Z succeeded"
    assert told.body == (
        "rollup, slot 2026-11-02T10:01:00Z: succeeded (attempt 1) after missing slots from"
        " slot 2026-11-02T10:00:00Z on.\n"
        "Look closer: cronwright runs --job rollup --history"
    )
    assert p.states["rollup"] == replace(state, open_since=None, open_kinds=frozenset())


def test_recovery_goes_only_to_targets_told_of_the_incidents_problems() -> None:
    only_missing = Notify(url=PAGER, events=frozenset({Event.MISSING, Event.RECOVERY}))
    manifest = replace(MANIFEST, notify=(only_missing,))
    state = JobState(
        incidents=1, open_since=T0, open_kinds=frozenset({"dead_letter"}), problem_slot=T0
    )
    p = plan(
        manifest,
        letters=[],
        runs=[ran(1, T0)],
        missing={},
        states={"rollup": state},
        grace=timedelta(),
    )
    assert p.notices == []  # closed, but PAGER never heard of a dead letter
    assert not p.states["rollup"].open


def test_a_slot_still_missing_after_its_incident_closed_is_not_a_new_problem() -> None:
    """A job whose catch-up policy is `none` keeps its missed slots missing."""
    closed = JobState(incidents=1, problem_slot=T0 + MINUTE)
    p = plan(
        MANIFEST,
        letters=[],
        runs=[],
        missing={"rollup": [T0, T0 + MINUTE]},
        states={"rollup": closed},
        grace=timedelta(),
    )
    assert p.notices == [] and p.states == {}
    newer = plan(
        MANIFEST,
        letters=[],
        runs=[],
        missing={"rollup": [T0, T0 + MINUTE, T0 + 5 * MINUTE]},
        states={"rollup": closed},
        grace=timedelta(),
    )
    assert keys(newer.notices) == [("missing", "rollup incident 2", OPS)]
    assert "1 slot missing from 2026-11-02T10:05:00Z" in newer.notices[0].title


def test_a_dead_letter_and_a_later_success_in_one_pass_open_and_close_an_incident() -> None:
    p = plan(
        MANIFEST,
        letters=[letter(7)],
        runs=[ran(1, T0 + MINUTE)],
        missing={},
        states={},
        grace=timedelta(),
    )
    assert keys(p.notices) == [
        ("dead_letter", "dead letter 7", OPS),
        ("dead_letter", "dead letter 7", PAGER),
        ("recovery", "rollup incident 1", OPS),
    ]
    assert p.states["rollup"] == JobState(incidents=1, problem_slot=T0)


@pytest.mark.parametrize(
    ("status", "ms", "told"),
    [
        ("succeeded", 48_000.0, False),  # exactly 80% of 60 s: not above it
        ("succeeded", 48_001.0, True),
        ("failed", 59_000.0, True),
        ("dead_lettered", 50_000.0, True),
        ("paused", 59_000.0, False),
        ("superseded", 59_000.0, False),
        ("succeeded", None, False),
    ],
)
def test_a_run_above_80_percent_of_its_timeout_is_told_near_timeout_keyed_by_the_run(
    status: str, ms: float | None, told: bool
) -> None:
    run = Run(run_id=41, job="rollup", slot=T0, status=status, attempt=2, duration_ms=ms)
    p = plan(MANIFEST, letters=[], runs=[run], missing={}, states={}, grace=timedelta())
    assert keys(p.notices) == ([("near_timeout", "run 41", OPS)] if told else [])


def test_the_near_timeout_message_says_how_long_against_the_timeout() -> None:
    run = Run(run_id=41, job="rollup", slot=T0, status="failed", attempt=2, duration_ms=54_321.0)
    told = plan(MANIFEST, letters=[], runs=[run], missing={}, states={}, grace=timedelta()).notices[
        0
    ]
    assert told.title == "[shop] rollup: slot 2026-11-02T10:00:00Z took 54.3 s of its 60 s timeout"
    assert told.body == (
        "rollup, slot 2026-11-02T10:00:00Z: attempt 2 failed after 54.3 s, 91% of its"
        " timeout_seconds (60).\n"
        "Reason: above 80% of the timeout a run is near it; a slower one is stopped there and"
        " retried.\n"
        "Look closer: cronwright runs --job rollup --history"
    )


def test_a_slot_is_told_missing_only_a_minute_past_its_grace() -> None:
    now = T0 + 10 * MINUTE
    slots = [now - 12 * MINUTE, now - 11 * MINUTE, now - 10 * MINUTE - timedelta(seconds=59)]
    assert to_tell(slots, now, timedelta(minutes=10)) == slots[:2]
    assert to_tell([now - MINUTE, now], now, timedelta()) == [now - MINUTE]


def test_the_missing_message_names_the_jobs_catch_up_policy() -> None:
    latest = replace(JOB, catch_up=CatchUp(policy=CatchUpPolicy.LATEST))
    manifest = replace(MANIFEST, jobs=(latest,))
    p = plan(
        manifest,
        letters=[],
        runs=[],
        missing={"rollup": [T0]},
        states={},
        grace=timedelta(minutes=10),
    )
    assert p.notices[0].title == "[shop] rollup: 1 slot missing from 2026-11-02T10:00:00Z"
    assert (
        "(2026-11-02T10:00:00Z) was neither sent nor run, past the grace of 600 s"
        in p.notices[0].body
    )
    assert "catch_up policy (latest)" in p.notices[0].body


def test_the_jobs_told_are_those_with_a_target() -> None:
    assert [j.name for j in incidents.notified(MANIFEST)] == ["rollup"]
    assert incidents.notified(replace(MANIFEST, notify=())) == []


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("slack://${SLACK_A}/${SLACK_B}/C0123", "slack://${SLACK_A}"),
        ("mailto://ops:${MAIL_PASSWORD}@example.com?to=a@b.c", "mailto://example.com"),
        ("json://127.0.0.1:9000/hook/${TOKEN}", "json://127.0.0.1:9000"),
        ("https://hc-ping.com/${HC_UUID}", "https://hc-ping.com"),
        ("not a url", "a target"),
    ],
)
def test_a_target_is_logged_by_its_scheme_and_host_as_written(url: str, label: str) -> None:
    assert target_label(url) == label


def test_a_reason_is_told_without_the_servers_detail_which_may_quote_row_values() -> None:
    quoting = replace(
        letter(7),
        reason="permanent error: unique_violation (23505): duplicate key value violates"
        ' unique constraint "t_pkey" DETAIL: Key (email)=(someone@example.com) exists.',
        error_class="unique_violation",
    )
    told = plan(MANIFEST, letters=[quoting], runs=[], missing={}, states={}, grace=timedelta())
    assert told.notices[0].body.splitlines()[1] == (
        "Reason: permanent error: unique_violation (23505): duplicate key value violates unique"
        ' constraint "t_pkey" (DETAIL hidden; --verbose shows it) (unique_violation)'
    )
