"""alerts.yml: Prometheus alerting rules over the metrics of ``serve`` and ``consume``
(``engine.app.observe``), with each job's thresholds taken from the manifest.

Prometheus must scrape those processes as the job :data:`SCRAPE_JOB` with
``honor_labels: true``: cronwright's metrics carry the job's name in their own ``job``
label, which Prometheus would otherwise rename to ``exported_job``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from engine.core.durations import NEAR_TIMEOUT, near_timeout_seconds
from engine.core.model import Job, Manifest

#: libyaml's emitter when PyYAML has it: the same bytes as PyYAML's own, four times faster
#: (2,000 rules for 1,000 jobs).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: The Prometheus scrape job of the ``serve`` and ``consume`` metrics targets.
SCRAPE_JOB = "cronwright"
#: How long a runner may go unscraped before it is down.
RUNNER_DOWN_FOR = 300
#: The window in which a dead letter keeps its alert firing.
DEAD_LETTER_WINDOW = 900
#: How long a slot may stay missing before it is alerted on. The gauge counts a slot as
#: missing only once it is past the grace its sender needs (Transport.grace_seconds) with
#: no record; the reconciler (every minute by default) then sends it, and it is queued.
#: A slot still missing five minutes later is one nobody will send.
MISSING_FOR = 300


def duration(seconds: float) -> str:
    """A Prometheus duration: ``15m``, ``1h30m``, ``4m48s``, ``1500ms``."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    parts = [(s // 86400, "d"), (s // 3600 % 24, "h"), (s // 60 % 60, "m"), (s % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _q(value: str) -> str:
    """A PromQL string literal."""
    return json.dumps(value)


def _runner_down() -> dict[str, Any]:
    up = f"up{{job={_q(SCRAPE_JOB)}}}"
    return {
        "alert": "CronwrightRunnerDown",
        "expr": f"{up} == 0 or absent({up})",
        "for": duration(RUNNER_DOWN_FOR),
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "A cronwright runner is down",
            "description": (
                "{{ if $labels.instance }}{{ $labels.instance }} has not been scraped"
                f"{{{{ else }}}}No {SCRAPE_JOB} target has been scraped{{{{ end }}}} for "
                f"{duration(RUNNER_DOWN_FOR)}: slots are neither sent nor run there. Check the "
                "`cronwright serve` or `cronwright consume` process, its --metrics-port, and "
                f"that Prometheus scrapes it as job {SCRAPE_JOB}."
            ),
        },
    }


def _dead_letters() -> dict[str, Any]:
    window = duration(DEAD_LETTER_WINDOW)
    return {
        "alert": "CronwrightDeadLetters",
        "expr": (
            'sum by (job) (increase(cronwright_runs_total{status="dead_lettered"}'
            f"[{window}])) > 0"
        ),
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Runs of {{ $labels.job }} were dead-lettered",
            "description": (
                '{{ $value | printf "%.0f" }} run(s) of {{ $labels.job }} dead-lettered in '
                f"the last {window}. `cronwright dead-letters list` shows why; "
                "`cronwright dead-letters replay` runs them again once fixed."
            ),
        },
    }


def _notifications_given_up() -> dict[str, Any]:
    window = duration(DEAD_LETTER_WINDOW)
    return {
        "alert": "CronwrightNotificationsGivenUp",
        "expr": (
            'sum by (kind) (increase(cronwright_notifications_total{outcome="given_up"}'
            f"[{window}])) > 0"
        ),
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "cronwright gave up sending {{ $labels.kind }} notifications",
            "description": (
                '{{ $value | printf "%.0f" }} {{ $labels.kind }} notification(s) were given '
                f"up in the last {window}, after every retry: their receivers were not told. "
                "The runner's log names each target and its error; fix the URL or the "
                "receiver (an alert that reaches nobody is the silent failure this one is for)."
            ),
        },
    }


def _slot_missing(job: Job, grace: int) -> dict[str, Any]:
    zone = job.timezone or "UTC"
    return {
        "alert": "CronwrightSlotMissing",
        "expr": f"max by (job) (cronwright_missing_slots{{job={_q(job.name)}}}) > 0",
        "for": duration(MISSING_FOR),
        "labels": {"job": job.name, "severity": "critical"},
        "annotations": {
            "summary": f"{job.name} has missing slots",
            "description": (
                f"{{{{ $value }}}} due slot(s) of {job.name} (cron `{job.cron}` {zone}) "
                f"have had no run and no message for over {duration(grace + MISSING_FOR)} "
                f"({grace} s of grace for their sender, then {duration(MISSING_FOR)} in which "
                f"the reconciler did not send them). `cronwright slots {job.name} --from T1"
                " --to T2` lists them; `cronwright reconcile` enqueues them."
            ),
        },
    }


def _near_timeout(job: Job) -> dict[str, Any]:
    limit = near_timeout_seconds(job)
    return {
        "alert": "CronwrightRunNearTimeout",
        "expr": (
            f"max by (job) (cronwright_last_run_duration_seconds{{job={_q(job.name)}}}) > {limit:g}"
        ),
        "labels": {"job": job.name, "severity": "warning"},
        "annotations": {
            "summary": f"{job.name} ran near its timeout",
            "description": (
                f"The last run of {job.name} took {{{{ $value | humanizeDuration }}}}, over "
                f"{NEAR_TIMEOUT:.0%} of its timeout_seconds {job.timeout_seconds}: at the "
                "timeout a run is stopped and retried. Speed up the job or raise "
                "timeout_seconds in the manifest."
            ),
        },
    }


def alert_rules(manifest: Manifest, header: str) -> str:
    """The rules file: one group, the process-wide alerts first, then each job's (by
    name). A job paused in the manifest has no missing slots to alert on."""
    jobs = sorted(manifest.jobs, key=lambda j: j.name)
    rules = [_runner_down(), _dead_letters(), _notifications_given_up()]
    grace = manifest.transport.grace_seconds
    rules += [_slot_missing(j, grace) for j in jobs if not j.paused]
    rules += [_near_timeout(j) for j in jobs]
    body = yaml.serialize(
        _node({"groups": [{"name": "cronwright", "rules": rules}]}),
        Dumper=_DUMPER,
        width=1_000_000,
        allow_unicode=True,
    )
    return f"# {header}\n{body}"


def _node(value: Any) -> yaml.Node:
    """The YAML node of rules made of mappings (in their order), lists and strings: what
    ``yaml.dump`` would represent, without its representer (a quarter of the time at
    1,000 jobs). A string that would read back as another type is quoted by the emitter,
    as ``yaml.dump`` does."""
    if isinstance(value, dict):
        pairs = [(_node(k), _node(v)) for k, v in value.items()]
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs)
    if isinstance(value, list):
        return yaml.SequenceNode("tag:yaml.org,2002:seq", [_node(v) for v in value])
    if not isinstance(value, str):
        raise TypeError(f"alert rules hold strings, not {type(value).__name__}")
    return yaml.ScalarNode("tag:yaml.org,2002:str", value)
