"""dashboard.json: a Grafana dashboard over the metrics of ``serve`` and ``consume``
(``engine.app.observe``): an overview row, then a row per job, repeated over the ``job``
variable whose options are the manifest's jobs: its runs by status, its durations against
its timeout and its missing slots. One repeated row keeps the file the same size for 6
jobs or 1,000.

The datasource is the ``DS_PROMETHEUS`` input, which Grafana asks for on import. The uid
is derived from the Worker's name, so that a re-import replaces the dashboard.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engine.codegen.alerts import SCRAPE_JOB
from engine.core.durations import NEAR_TIMEOUT
from engine.core.model import Manifest

#: Grafana 10.4's dashboard schema.
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
#: The row repeated for each selected job selects its series with this.
JOB = '{job=~"$job"}'
_WIDTH = 24  # Grafana's grid
_HEIGHT = 8


def _q(value: str) -> str:
    return json.dumps(value)


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    title: str,
    exprs: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    dashed: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A panel a third of the grid wide; ``dashed`` draws those series (by legend) as
    dashed lines of a colour. Its id and position are given by :func:`_layout`."""
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": color}},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            ],
        }
        for name, color in (dashed or {}).items()
    ]
    options: dict[str, Any] = (
        {"legend": {"displayMode": "list", "placement": "bottom"}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"]}}
    )
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": _HEIGHT, "w": _WIDTH // 3},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": overrides},
        "options": options,
        "targets": [_target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(exprs)],
    }


def _overview() -> list[dict[str, Any]]:
    up = f"up{{job={_q(SCRAPE_JOB)}}}"
    return [
        _panel(
            "Runs by status",
            [("sum by (status) (increase(cronwright_runs_total[$__rate_interval]))", "{{status}}")],
        ),
        _panel("Missing slots", [("max by (job) (cronwright_missing_slots)", "{{job}}")]),
        _panel(
            "Oldest missing slot",
            [("max by (job) (cronwright_oldest_missing_slot_age_seconds)", "{{job}}")],
            unit="s",
        ),
        _panel(
            "Queue depth",
            [("max by (queue, state) (cronwright_queue_depth)", "{{queue}} {{state}}")],
        ),
        _panel(
            "Dead letters",
            [
                (
                    'sum by (job) (increase(cronwright_runs_total{status="dead_lettered"}'
                    "[$__rate_interval]))",
                    "{{job}}",
                )
            ],
        ),
        _panel(
            "Notifications",
            [
                (
                    "sum by (kind, outcome) (increase(cronwright_notifications_total"
                    "[$__rate_interval]))",
                    "{{kind}} {{outcome}}",
                )
            ],
        ),
        _panel(
            "Runners up",
            [(f"sum({up})", "up"), (f"count({up})", "targets")],
            kind="stat",
        ),
    ]


def _job_panels() -> list[dict[str, Any]]:
    near = f"{NEAR_TIMEOUT:.0%} of timeout"
    runs = f"sum by (status) (increase(cronwright_runs_total{JOB}[$__rate_interval]))"
    return [
        _panel("$job: runs by status", [(runs, "{{status}}")]),
        _panel(
            "$job: duration against the timeout",
            [
                (f"max(cronwright_last_run_duration_seconds{JOB})", "last run"),
                (
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(cronwright_run_duration_seconds_bucket{JOB}[$__rate_interval])))",
                    "p95",
                ),
                (f"max(cronwright_job_timeout_seconds{JOB})", "timeout"),
                (f"{NEAR_TIMEOUT} * max(cronwright_job_timeout_seconds{JOB})", near),
            ],
            unit="s",
            dashed={"timeout": "red", near: "orange"},
        ),
        _panel(
            "$job: missing slots",
            [
                (f"max(cronwright_missing_slots{JOB})", "missing"),
                (f"max(cronwright_oldest_missing_slot_age_seconds{JOB})", "oldest (s)"),
            ],
        ),
    ]


def _job_variable(manifest: Manifest) -> dict[str, Any]:
    """The manifest's jobs, all selected by default."""
    names = sorted(j.name for j in manifest.jobs)
    return {
        "name": "job",
        "label": "job",
        "type": "custom",
        "query": ",".join(names),
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [{"selected": True, "text": "All", "value": "$__all"}]
        + [{"selected": False, "text": n, "value": n} for n in names],
    }


def _row(title: str, *, collapsed: bool, panels: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"type": "row", "title": title, "collapsed": collapsed}
    row["gridPos"] = {"h": 1, "w": _WIDTH}
    row["panels"] = panels if collapsed else []
    return row


def _layout(rows: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Ids and grid positions, top to bottom. A collapsed row carries its panels inside
    (placed as if it were open) and takes one grid unit; an open row's follow it."""
    out: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row, panels in rows:
        row["id"], row["gridPos"] = next_id, {**row["gridPos"], "x": 0, "y": y}
        out.append(row)
        next_id, y = next_id + 1, y + 1
        x, top = 0, y
        for panel in panels:
            w = panel["gridPos"]["w"]
            if x + w > _WIDTH:
                x, top = 0, top + _HEIGHT
            panel["id"], panel["gridPos"] = next_id, {**panel["gridPos"], "x": x, "y": top}
            next_id, x = next_id + 1, x + w
        if not row["collapsed"]:
            out += panels
            y = top + _HEIGHT if panels else y
    return out


def dashboard(manifest: Manifest, header: str) -> str:
    name = manifest.worker.name
    job_row = _row("$job", collapsed=True, panels=_job_panels())
    job_row["repeat"] = "job"
    rows = [
        (_row("Overview", collapsed=False, panels=[]), _overview()),
        (job_row, job_row["panels"]),
    ]
    board = {
        "description": header,
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes cronwright's serve/consume",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
        ],
        "title": f"cronwright: {name}",
        "uid": "cronwright-" + hashlib.sha256(name.encode()).hexdigest()[:16],
        "tags": ["cronwright"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "annotations": {"list": []},
        "templating": {"list": [_job_variable(manifest)]},
        "panels": _layout(rows),
    }
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"
