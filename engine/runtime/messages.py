"""Queue messages: ``{type, scheduledFor?, correlationId?, rerun?}`` -> a job and its slot.

Anything that cannot be run raises :class:`MessageError` with the precise reason, so the
executor can dead-letter it (never acknowledge and drop it). A message without
``scheduledFor`` (a manual enqueue) means the job's latest slot at or before now. A
``rerun`` id asks to recompute a slot that already succeeded, once per id.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.core.describe import show, type_name
from engine.core.errors import MessageError, SlotNotDue
from engine.core.model import Job, Manifest
from engine.core.times import SLOT_RANGE_HINT, floor_minute, iso, slot_out_of_range
from engine.schedule.slots import ScheduleFor, cron_schedule, latest_at_or_before

Body = bytes | str | Mapping[str, Any]

_ISO_UTC = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|\+00:00)",
    re.ASCII,  # \d is 0-9 only, not every script's digits
)
_EXAMPLE = "2026-10-31T10:00:00Z"
#: How far ahead of our clock a slot may be and still count as clock skew (retried).
CLOCK_SKEW_SECONDS = 300.0


@dataclass(frozen=True, kw_only=True)
class Message:
    type: str
    job: Job
    slot: datetime
    correlation_id: str | None = None
    manual: bool = False  # no scheduledFor: the slot was derived from the clock
    rerun: str | None = None  # a rerun request id: recompute even a succeeded slot, once


def decode(body: Body) -> Mapping[str, Any]:
    """The body as a JSON object."""
    if isinstance(body, Mapping):
        return body
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageError(
                f"message body is not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from exc
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MessageError(f"message body is not JSON ({exc})") from exc
    except ValueError as exc:  # an integer longer than Python's 4300-digit limit
        raise MessageError(f"message body is not JSON we can read ({exc})") from None
    except RecursionError:
        raise MessageError("message body is not JSON we can read (nested too deeply)") from None
    if not isinstance(data, dict):
        raise MessageError(
            f"message body must be a JSON object, got {type_name(data, dialect='json')}"
        )
    return data


def peek_type(body: Body) -> str | None:
    """The ``type`` of a body, if it has a string one, for dead letters of bad messages
    (storable: see :func:`storable`)."""
    try:
        value = decode(body).get("type")
    except MessageError:
        return None
    return storable(value) if isinstance(value, str) else None


def body_text(body: Body) -> str:
    """The body as text, for the dead-letter record (storable: see :func:`storable`)."""
    if isinstance(body, Mapping):
        return json.dumps(body, sort_keys=True, default=str)
    if isinstance(body, bytes | bytearray):
        return storable(bytes(body).decode("utf-8", "backslashreplace"))
    return storable(body)


def storable(text: str) -> str:
    """``text`` as Postgres can store it in a text column: a NUL character, which it
    refuses, and a lone surrogate, which is not UTF-8, are written as escapes. Otherwise
    a poison message's dead letter could never be written."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _job(data: Mapping[str, Any], manifest: Manifest) -> Job:
    if "type" not in data:
        raise MessageError("message has no 'type'")
    type_ = data["type"]
    if not isinstance(type_, str):
        raise MessageError(
            f"message 'type' must be a string, got {type_name(type_, dialect='json')}"
        )
    if not type_.strip():
        raise MessageError("message 'type' is blank")
    job = manifest.job_by_type(type_)
    if job is None:
        known = sorted(j.type for j in manifest.jobs)
        # A suggestion for a typo, not for a megabyte of junk (difflib is quadratic).
        close = difflib.get_close_matches(type_, known, n=1) if len(type_) <= 200 else []
        hint = f"did you mean '{close[0]}'?" if close else f"known types: {', '.join(known)}"
        raise MessageError(f"unknown message type {show(type_)}", hint=hint)
    return job


def new_rerun_id() -> str:
    """A fresh rerun request id: each asks, once, to recompute a slot that succeeded."""
    return f"rerun-{uuid.uuid4().hex}"


def parse_slot(value: object) -> datetime:
    """An ISO 8601 UTC time on a whole minute."""
    if not isinstance(value, str):
        raise MessageError(
            f"'scheduledFor' must be a string, got {type_name(value, dialect='json')}"
        )
    m = _ISO_UTC.fullmatch(value)
    t: datetime | None = None
    if m is not None:
        year, month, day, hour, minute, seconds, fraction = m.groups("")
        second = int(seconds or 0)
        with contextlib.suppress(ValueError):  # e.g. 2026-02-30: not a calendar date
            t = datetime(
                int(year), int(month), int(day), int(hour), int(minute), second, tzinfo=UTC
            )
    if m is None or t is None:
        raise MessageError(
            f"'scheduledFor' {show(value)} is not an ISO 8601 UTC time like {_EXAMPLE}"
        )
    if second or fraction.strip("0"):
        raise MessageError(f"'scheduledFor' {value} is not on a minute")
    return t


def resolve(
    data: Mapping[str, Any],
    manifest: Manifest,
    *,
    now: datetime,
    schedule_for: ScheduleFor = cron_schedule,
) -> Message:
    """The job and slot a decoded message asks for."""
    job = _job(data, manifest)
    correlation = data.get("correlationId")
    if correlation is not None and not isinstance(correlation, str):
        raise MessageError(
            f"'correlationId' must be a string, got {type_name(correlation, dialect='json')}"
        )
    rerun = data.get("rerun")
    if rerun is not None and (not isinstance(rerun, str) or not rerun.strip()):
        raise MessageError(
            "'rerun' must be a non-empty string (a rerun request id),"
            f" got {type_name(rerun, dialect='json')}"
        )
    schedule = schedule_for(job)
    raw = data.get("scheduledFor")
    if raw is None:
        slot = latest_at_or_before(schedule, now)
        if slot is None:
            raise MessageError(f"{job.type} (cron '{job.cron}') has no slot before {iso(now)}")
        return Message(
            type=job.type,
            job=job,
            slot=slot,
            correlation_id=correlation,
            manual=True,
            rerun=rerun,
        )
    slot = parse_slot(raw)
    problem = slot_out_of_range(slot, now)
    if problem is not None:
        raise MessageError(f"'scheduledFor' {problem}", hint=SLOT_RANGE_HINT)
    if not schedule.matches(slot):
        raise MessageError(
            f"'scheduledFor' {iso(slot)} is not a slot of {job.type} (cron '{job.cron}')"
        )
    if slot > floor_minute(now):
        # Its window would still be filling: running it now would mark the slot done
        # with partial data, and the real run would then be a duplicate. A slot just
        # ahead of our clock is skew with Cloudflare's, not a bad message: wait for it.
        ahead = (slot - now).total_seconds()
        message = f"'scheduledFor' {iso(slot)} is in the future (now {iso(now)})"
        if ahead <= CLOCK_SKEW_SECONDS:
            raise SlotNotDue(message, due_in_seconds=ahead)
        raise MessageError(message)
    return Message(type=job.type, job=job, slot=slot, correlation_id=correlation, rerun=rerun)


def parse(
    body: Body,
    manifest: Manifest,
    *,
    now: datetime,
    schedule_for: ScheduleFor = cron_schedule,
) -> Message:
    """Decode and resolve one queue message body."""
    return resolve(decode(body), manifest, now=now, schedule_for=schedule_for)
