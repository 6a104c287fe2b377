"""How long a job's runs may take, as the metrics and the generated alerts see it: the
near-timeout threshold and the run-duration histogram's buckets, both from the manifest's
``timeout_seconds`` (the Prometheus gauges in ``engine.app.observe`` and the rules in
``engine.codegen.alerts`` share them)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.core.job import Job

#: A run is near its timeout above this fraction of the job's ``timeout_seconds``.
NEAR_TIMEOUT = 0.8

# Prometheus' default buckets stop at 10 s; this 1-2.5-5 ladder goes on to a day, the
# longest timeout the schema allows.
_LADDER = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
    250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 25000.0, 50000.0, 86400.0,
)  # fmt: skip


def near_timeout_seconds(job: Job) -> float:
    """The duration above which a run of ``job`` is near its timeout."""
    return _near(job.timeout_seconds)


def _near(timeout: float) -> float:
    return round(timeout * NEAR_TIMEOUT, 3)


def duration_buckets(jobs: Iterable[Job]) -> tuple[float, ...]:
    """The ladder up to the longest timeout, plus each distinct timeout and its
    near-timeout threshold, so that "runs near or at their timeout" can be read from the
    histogram for every job (``+Inf`` is added by the client)."""
    timeouts = {float(j.timeout_seconds) for j in jobs}
    longest = max(timeouts, default=_LADDER[-1])
    marks = {b for b in _LADDER if b <= longest}
    marks |= timeouts
    marks |= {_near(t) for t in timeouts}
    return tuple(sorted(marks))
