"""What cronwright tells people, and what each message is about.

A :class:`Notice` is one message to one target (an Apprise URL, or a job's healthcheck
URL for a ping). Its key, ``(kind, subject, target)``, names what it is about: the
outbox (``cronwright.notifications``) keeps one row per key, so an event that two
processes notice is sent once. The subjects:

- ``dead_letter``: the dead letter (``dead letter 42``): each one is told;
- ``missing`` and ``recovery``: the job's incident (``a incident 3``): once each per
  incident (:mod:`engine.runtime.incidents` decides when one opens and closes);
- ``near_timeout``: the run (``run 1234``);
- pings: the attempt (``a 2026-11-02T10:01:00Z 17 #2``: job, slot, message, attempt).

Every message says the job, the slot (ISO 8601, UTC), what happened and why, and the
``cronwright`` command that looks closer. Targets are written as the manifest writes
them, ``${NAME}`` unexpanded: no secret is in a notice, nor in the outbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast, get_args

from engine.core.durations import NEAR_TIMEOUT
from engine.core.errors import ConfigError, without_detail
from engine.core.model import Job
from engine.core.times import iso

Kind = Literal[
    "dead_letter",
    "missing",
    "recovery",
    "near_timeout",
    "ping_start",
    "ping_success",
    "ping_fail",
]
KINDS: tuple[str, ...] = get_args(Kind)
#: How a notification reads in a chat or a mail (Apprise's notify types).
Level = Literal["info", "success", "warning", "failure"]
LEVELS: dict[str, Level] = {
    "dead_letter": "failure",
    "missing": "warning",
    "recovery": "success",
    "near_timeout": "warning",
}
PINGS: frozenset[str] = frozenset({"ping_start", "ping_success", "ping_fail"})
#: A reason longer than this is cut (chat services cap a message's size).
MAX_REASON = 1000


def kind(value: str) -> Kind:
    """A kind read back from the outbox."""
    if value not in KINDS:  # the table's CHECK allows only these
        raise ConfigError(
            f"notification kind {value!r} is unknown to this cronwright",
            hint="run the same cronwright version as the database's newest migration",
        )
    return cast(Kind, value)


@dataclass(frozen=True, kw_only=True)
class Notice:
    kind: Kind
    subject: str
    target: str  # as the manifest writes it (${NAME} unexpanded)
    job: str | None
    slot: datetime | None
    title: str
    body: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.target)

    @property
    def ordered(self) -> bool:
        """Pings go out in order per target (a /start before its outcome)."""
        return self.kind in PINGS

    @property
    def level(self) -> Level:
        return LEVELS.get(self.kind, "info")


def target_label(url: str) -> str:
    """A target for a log line: its scheme and host as the manifest writes them (no user
    or password, no path), e.g. ``slack://${SLACK_TOKEN_A}`` or ``json://127.0.0.1:8000``."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)", url)
    if match is None:
        return "a target"
    host = match.group(2).rpartition("@")[2]
    return f"{match.group(1)}://{host}"


def reason(text: str) -> str:
    """A reason as a message carries it: on one line, without the server's DETAIL (it may
    quote row values), at most :data:`MAX_REASON` characters."""
    text = " ".join(without_detail(text).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


@dataclass(frozen=True, kw_only=True)
class Letter:
    """A dead letter as the notifier reads it."""

    id: int
    job: str | None
    type: str | None
    slot: datetime | None
    reason: str
    error_class: str
    attempts: int


@dataclass(frozen=True, kw_only=True)
class Run:
    """A finished attempt from the run history."""

    run_id: int
    job: str
    slot: datetime
    status: str
    attempt: int
    duration_ms: float | None


def dead_letter(project: str, letter: Letter, target: str) -> Notice:
    if letter.job is not None:
        who = letter.job
    else:
        who = f"a message of type {letter.type!r}" if letter.type else "a message"
    where = f"slot {iso(letter.slot)}" if letter.slot else "no slot (the message names none)"
    look = "cronwright dead-letters list" + (f" --job {letter.job}" if letter.job else "")
    again = (
        f"\nRun it again once fixed: cronwright dead-letters replay {letter.id} --run"
        if letter.job and letter.slot
        else ""
    )
    return Notice(
        kind="dead_letter",
        subject=f"dead letter {letter.id}",
        target=target,
        job=letter.job,
        slot=letter.slot,
        title=f"[{project}] {who}: dead letter"
        + (f" for slot {iso(letter.slot)}" if letter.slot else ""),
        body=(
            f"{who}, {where}: dead-lettered after {letter.attempts}"
            f" attempt{_s(letter.attempts)}.\n"
            f"Reason: {reason(letter.reason)} ({letter.error_class})\n"
            f"Look closer: {look}{again}"
        ),
    )


def missing(
    project: str, job: Job, incident: int, slots: list[datetime], grace: timedelta, target: str
) -> Notice:
    n, first, last = len(slots), slots[0], slots[-1]
    span = iso(first) if n == 1 else f"{iso(first)} to {iso(last)}"
    return Notice(
        kind="missing",
        subject=f"{job.name} incident {incident}",
        target=target,
        job=job.name,
        slot=first,
        title=f"[{project}] {job.name}: {n} slot{_s(n)} missing from {iso(first)}",
        body=(
            f"{job.name}: {n} due slot{_s(n)} ({span}) {'was' if n == 1 else 'were'} neither"
            f" sent nor run, past the grace of {grace.total_seconds():g} s.\n"
            "Reason: nothing sent them: was cronwright (or the Worker) stopped, or its"
            f" cron flag off? The reconciler catches up by the job's catch_up policy"
            f" ({job.catch_up.policy}).\n"
            f"Look closer: cronwright slots {job.name} --from {iso(first)}"
            f" --to {iso(last + timedelta(minutes=1))}"
        ),
    )


def recovery(
    project: str,
    job: str,
    incident: int,
    run: Run,
    since: datetime,
    kinds: frozenset[str],
    target: str,
) -> Notice:
    what = " and ".join(
        w for k, w in (("dead_letter", "dead letters"), ("missing", "missing slots")) if k in kinds
    )
    return Notice(
        kind="recovery",
        subject=f"{job} incident {incident}",
        target=target,
        job=job,
        slot=run.slot,
        title=f"[{project}] {job}: recovered, slot {iso(run.slot)} succeeded",
        body=(
            f"{job}, slot {iso(run.slot)}: succeeded (attempt {run.attempt}) after"
            f" {what or 'problems'} from slot {iso(since)} on.\n"
            f"Look closer: cronwright runs --job {job} --history"
            + (
                f"; slots still dead-lettered: cronwright dead-letters list --job {job}"
                if "dead_letter" in kinds
                else ""
            )
        ),
    )


def near_timeout(project: str, job: Job, run: Run, target: str) -> Notice:
    took = (run.duration_ms or 0.0) / 1000
    share = took / job.timeout_seconds * 100
    return Notice(
        kind="near_timeout",
        subject=f"run {run.run_id}",
        target=target,
        job=job.name,
        slot=run.slot,
        title=(
            f"[{project}] {job.name}: slot {iso(run.slot)} took {took:.1f} s of its"
            f" {job.timeout_seconds} s timeout"
        ),
        body=(
            f"{job.name}, slot {iso(run.slot)}: attempt {run.attempt} {run.status} after"
            f" {took:.1f} s, {share:.0f}% of its timeout_seconds ({job.timeout_seconds}).\n"
            f"Reason: above {NEAR_TIMEOUT:.0%} of the timeout a run is near it; a slower"
            " one is stopped there and retried.\n"
            f"Look closer: cronwright runs --job {job.name} --history"
        ),
    )
