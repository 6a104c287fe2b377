"""cronwright: one YAML manifest of recurring jobs -> Cloudflare cron + Queues config and a
replay-safe runtime for Postgres and R2.

The public API is importable from here; submodules load on first use so that the CLI's
fast commands never pay for the runtime's imports."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ActionRun",
    "CronError",
    "CronwrightError",
    "Job",
    "Manifest",
    "ManifestError",
    "ManifestErrors",
    "RetryLater",
    "load",
    "parse_cron",
]

_EXPORTS = {
    "ActionRun": ("engine.runtime.pyaction", "ActionRun"),
    "CronError": ("engine.core.errors", "CronError"),
    "CronwrightError": ("engine.core.errors", "CronwrightError"),
    "ManifestError": ("engine.core.errors", "ManifestError"),
    "ManifestErrors": ("engine.core.errors", "ManifestErrors"),
    "RetryLater": ("engine.core.errors", "RetryLater"),
    "Job": ("engine.core.model", "Job"),
    "Manifest": ("engine.core.model", "Manifest"),
    "load": ("engine.manifest.loader", "load"),
    "parse_cron": ("engine.schedule.cron", "parse"),
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    return getattr(importlib.import_module(module), attr)
