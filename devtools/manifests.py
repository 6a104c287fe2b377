"""A manifest built directly from the model, for tests and benchmarks that run probe jobs
without a jobs.yaml on disk."""

from __future__ import annotations

from pathlib import Path

from engine.core.model import Job, Manifest, Plan, Queue, Worker


def probe_manifest(*jobs: Job, path: str = "jobs.yaml") -> Manifest:
    return Manifest(
        path=path,
        worker=Worker(
            name="probe-worker", compatibility_date="2026-04-01", cron_flag="ENABLE_CRON"
        ),
        plan=Plan.PAID,
        trigger_budget=10,
        queue=Queue(name="probe-jobs", binding="JOBS", dead_letter_queue="probe-jobs-dlq"),
        bucket=None,
        dataset=None,
        environments=(),
        jobs=jobs,
    )


# The ten kinds of cron a large registry holds, with how often each appears in
# scale_project's manifests (weights out of 20).
SCALE_CRONS: tuple[tuple[str, int], ...] = (
    ("* * * * *", 2),
    ("*/5 * * * *", 3),
    ("*/15 * * * *", 2),
    ("{m} * * * *", 4),
    ("{m} {h} * * *", 4),
    ("{m} {h} * * MON-FRI", 1),
    ("{m} {h} * * SUN", 1),
    ("{m} {h} 1 * *", 1),
    ("{m} {h} LW * *", 1),
    ("{m} {h} * * MON#1", 1),
)
SCALE_ZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata")
_SCALE_SQL = (
    "INSERT INTO scale.counts (job, slot, n)\n"
    "SELECT {{ params.label }}, {{ slot }}, count(*) FROM scale.events\n"
    "WHERE created_at >= {{ window_start }} AND created_at < {{ window_end }}\n"
    "ON CONFLICT (job, slot) DO UPDATE SET n = EXCLUDED.n;\n"
)


def scale_project(
    root: str | Path,
    jobs: int,
    *,
    plan: str = "paid",
    trigger_budget: int | None = None,
    one_template: bool = False,
) -> Path:
    """Write a project of ``jobs`` jobs to ``root`` (jobs.yaml and one template per job)
    and return the manifest's path. Deterministic: job i gets a kind of cron by the
    weights of SCALE_CRONS, minutes and hours spread by i, and every third job a zone.
    Each template's text names its job, as real ones differ, so nothing keyed by a
    template's text is shared between jobs; ``one_template`` gives every file one text.
    ``plan: free`` folds them onto 5 triggers, where the Worker filters the most."""
    root = Path(root)
    (root / "sql").mkdir(parents=True, exist_ok=True)
    kinds = [cron for cron, weight in SCALE_CRONS for _ in range(weight)]
    lines = [
        "version: 1",
        f"plan: {plan}",
        *([f"trigger_budget: {trigger_budget}"] if trigger_budget is not None else []),
        "worker: {name: scale-worker, main: worker.js, compatibility_date: '2026-04-01',"
        " cron_flag: SCALE_CRON}",
        "queue: {name: scale-jobs, binding: JOBS, dead_letter_queue: scale-jobs-dlq}",
        "analytics_engine: {binding: LOGS, dataset: scale_logs}",
        "jobs:",
    ]
    for i in range(jobs):
        name = f"job-{i:04d}"
        cron = kinds[i % len(kinds)].format(m=(7 * i) % 60, h=(i // 3) % 24)
        template = f"sql/{name.replace('-', '_')}.sql"
        heading = "" if one_template else f"-- {name}: events counted per slot of its window\n"
        (root / template).write_text(heading + _SCALE_SQL, encoding="utf-8")
        lines += [
            f"  {name}:",
            f"    type: scale.{name}",
            f'    cron: "{cron}"',
            f"    sql: {template}",
            "    window: {period: hour, offset: -1}",
            f"    params: {{label: {name}}}",
        ]
        if i % 3 == 2:
            lines.append(f"    timezone: {SCALE_ZONES[(i // 3) % len(SCALE_ZONES)]}")
    path = root / "jobs.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
