"""A manifest built directly from the model, for tests and benchmarks that run probe jobs
without a jobs.yaml on disk."""

from __future__ import annotations

from engine.core.model import Job, Manifest, Plan, Queue, Worker


def probe_manifest(*jobs: Job, path: str = "jobs.yaml") -> Manifest:
    return Manifest(
        path=path,
        worker=Worker(name="probe-worker", compatibility_date="2026-04-01"),
        plan=Plan.PAID,
        trigger_budget=10,
        queue=Queue(name="probe-jobs", binding="JOBS", dead_letter_queue="probe-jobs-dlq"),
        bucket=None,
        dataset=None,
        environments=(),
        jobs=jobs,
    )
