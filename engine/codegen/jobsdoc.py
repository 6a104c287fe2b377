"""JOBS.md: the jobs as documentation, generated so that it cannot drift from the code."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.codegen.wrangler import flag
from engine.core.model import Job, Manifest
from engine.schedule.slots import cron_schedule, settles

_REFERENCE_MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
JOB_COLUMNS = (
    "message type", "job", "cron", "zone", "trigger", "window", "retries", "timeout",
    "overlap", "paused", "catch-up",
)  # fmt: skip


def _row(cells: Sequence[str]) -> str:
    """A table row; header, delimiter and body rows all go through here, so that their
    cell counts agree."""
    return "| " + " | ".join(cells) + " |"


def _window_text(job: Job) -> str:
    if job.window is None:
        return "none"
    period, offset = job.window.period.value, job.window.offset
    if offset == 0:
        return f"the slot's {period}"
    if offset == -1:
        return f"the {period} before the slot's"
    side = "before" if offset < 0 else "after"
    return f"{abs(offset)} {period}s {side} the slot's"


def _catch_up_text(job: Job) -> str:
    c = job.catch_up
    return "none" if c.policy.value == "none" else f"{c.policy.value} within {c.within_seconds}s"


def _settle_text(job: Job) -> str:
    """Which runs settle a day, as a sentence (jobs with an hourly window only)."""
    settle = job.settle_seconds
    # The run that settles a day, looked up over one week of days: a cron that differs
    # by weekday is described without a time.
    schedule = cron_schedule(job)
    week = [_REFERENCE_MONDAY + timedelta(days=d, seconds=settle) for d in range(7)]
    firsts = {
        (nxt - t.replace(hour=0, minute=0, second=0)).total_seconds()
        for t in week
        if (nxt := schedule.next_after(t - timedelta(minutes=1))) is not None
    }
    when = ""
    if len(firsts) == 1:
        (offset,) = firsts
        if offset < 86400:
            hh, mm = int(offset // 3600), int(offset % 3600 // 60)
            when = f" (with this cron: the {hh:02d}:{mm:02d} run)"
    return (
        f"- `{job.type}` settles day D, re-aggregating it in full (late events included), "
        f"at its first run at or after D+1 00:00 + {settle}s{when}."
    )


def jobs_doc(manifest: Manifest, table: dict[str, Any] | None, header: str) -> str:
    """The jobs as documentation, generated so that docs cannot drift from the code.
    ``table`` is the Worker's dispatch table; None for a manifest without a Worker (no
    trigger column then)."""
    q, w = manifest.queue, manifest.worker
    columns = [c for c in JOB_COLUMNS if c != "trigger" or table is not None]
    where = (
        f"Queue `{q.name}` (dead letters: `{q.dead_letter_queue}`), "
        f"consumer `{q.consumer.type.value}` with max_retries {manifest.consumer_max_retries}. "
        if table is not None
        else f"Run by `cronwright serve` from the Postgres queue `{q.name}`. "
    )
    lines = [
        f"<!-- {header} -->",
        f"# Jobs of `{w.name if table is not None else manifest.name}`",
        "",
        where + f'Cron dispatch runs while `{w.cron_flag}` is `"true"` '
        f'(default `"{flag(w.cron_enabled)}"`).',
        "",
        _row(columns),
        _row(["---"] * len(columns)),
    ]
    for job in sorted(manifest.jobs, key=lambda j: j.type):
        r = job.retry
        retry = (
            f"{r.max_attempts} attempts, {r.initial_delay_seconds}s-{r.max_delay_seconds}s "
            f"{'exponential' if r.exponential else 'fixed'}{', full jitter' if r.jitter else ''}"
        )
        trigger = [f"`{table['jobs'][job.type]['trigger']}`"] if table is not None else []
        cells = [
            f"`{job.type}`", job.name, f"`{job.cron}`", job.timezone or "UTC", *trigger,
            _window_text(job), retry, f"{job.timeout_seconds}s", job.overlap.value,
            "yes" if job.paused else "no", _catch_up_text(job),
        ]  # fmt: skip
        lines.append(_row(cells))
    lines += [
        "",
        "Catch-up is what `cronwright reconcile` enqueues for due slots that were never sent:"
        " `all` missing ones, the `latest` slot if it is missing, or `none`, only among slots"
        " due within the window. Default: `all`, within one day or the schedule's longest gap"
        " between slots when that is longer.",
    ]
    if table is not None:
        lines += ["", _row(["trigger", "sends"]), _row(["---", "---"])]
        for trigger, types in table["triggers"].items():
            lines.append(_row([f"`{trigger}`", ", ".join(f"`{t}`" for t in types)]))
    settling = [_settle_text(j) for j in sorted(manifest.jobs, key=lambda j: j.type) if settles(j)]
    if settling:
        lines += ["", "Settling (`window.settle_seconds`):", "", *settling]
    return "\n".join(lines) + "\n"
