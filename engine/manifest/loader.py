"""Load jobs.yaml: YAML with line marks, then the schema, then meaning, then the model.

Every problem is collected and raised at once as ManifestErrors, sorted by position,
each rendered ``jobs.yaml:LINE:COL: path: problem; fix``. The checks of meaning beyond
the schema are engine/manifest/jobchecks.py (each job) and topchecks.py (the top level).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.core.describe import type_name
from engine.core.errors import Location, ManifestError, ManifestErrors
from engine.core.model import Manifest
from engine.manifest import schema, yamlmarks
from engine.manifest.build import build
from engine.manifest.checker import Checker, decode
from engine.manifest.jobchecks import check_jobs
from engine.manifest.topchecks import check_top
from engine.schedule.slots import schedule_key


def load(path: str | os.PathLike[str]) -> Manifest:
    p = Path(path)
    try:
        text = decode(p.read_bytes(), str(path))
    except ManifestError as exc:
        raise ManifestErrors([exc]) from None
    except OSError as exc:
        raise ManifestErrors(
            [
                ManifestError(
                    f"cannot read manifest: {exc.strerror}",
                    location=Location(str(p)),
                    hint="run from the directory holding jobs.yaml or pass its path",
                )
            ]
        ) from exc
    return load_text(text, filename=str(path), root=p.parent)


def locate(path: str | os.PathLike[str], at: yamlmarks.Path) -> Location:
    """Where the value at ``at`` sits in the manifest file, for a problem found after
    loading it (``cronwright check-actions``)."""
    marked = yamlmarks.load(Path(path).read_text(encoding="utf-8"))
    line, col = marked.where(at)
    return Location(str(path), line, col)


def load_text(text: str, *, filename: str = "jobs.yaml", root: Path | None = None) -> Manifest:
    """Parse and validate manifest text; templates resolve against ``root``."""
    checker = Checker(filename, root or Path("."))
    try:
        marked = yamlmarks.load(text)
    except yamlmarks.YamlSyntaxError as exc:
        raise ManifestErrors(
            [
                ManifestError(
                    f"YAML syntax error: {exc.problem}",
                    location=Location(filename, exc.line, exc.col),
                    hint="fix the YAML at this position",
                )
            ]
        ) from None
    except yamlmarks.YamlRefused as exc:
        checker.error(exc.path, exc.problem, exc.hint, at=(exc.line, exc.col))
        raise ManifestErrors(checker.errors) from None
    return _check(checker, marked)


def _check(c: Checker, marked: yamlmarks.Marked) -> Manifest:
    c.marked = marked
    data = marked.data
    for path, first, again in marked.duplicates:
        c.error(
            path,
            f"duplicate key '{path[-1]}' (first defined at line {first[0]})",
            "keep one: names must be unique",
            at=again,
        )
    if not isinstance(data, dict):
        c.error(
            (),
            f"the manifest must be a mapping, got {type_name(data, dialect='yaml')}",
            "start from the example jobs.yaml in the README",
        )
        raise ManifestErrors(c.errors)
    for v in schema.violations(data):
        c.error(v.path, v.problem, v.hint, key=v.key)
    schema_ok = not c.errors
    reads = check_jobs(c, data)
    check_top(c, data)
    if c.errors or not schema_ok:
        raise ManifestErrors(c.errors)
    manifest = build(data, c.filename, root=c.root, reads=reads)
    if manifest.cloudflare:  # the trigger budget is the Worker's
        _check_budget(c, manifest)
    return manifest


def _check_budget(c: Checker, manifest: Manifest) -> None:
    """More distinct schedules than triggers: fold them, within the waste limit."""
    jobs = [j for j in manifest.jobs if not j.paused]
    if len({schedule_key(j) for j in jobs}) <= manifest.trigger_budget:
        return  # no more needs than schedules: nothing to fold
    from engine.schedule import fold  # only a manifest that folds needs it

    result = fold.fold(jobs, manifest.trigger_budget)
    if not result.folded:
        return
    wasted = sum(w for _, w in fold.stats(result, jobs).values())
    limit = manifest.fold_max_wasted_per_day
    if wasted <= limit:
        return
    distinct = result.schedules
    merges = "; ".join(
        f"{', '.join(t.types)} on '{t.cron}'" for t in result.triggers if len(t.types) > 1
    )
    c.error(
        ("jobs",),
        f"{distinct} distinct schedules exceed the budget of {manifest.trigger_budget} "
        f"triggers, and the best folding wastes {wasted:.1f} invocations a day "
        f"(limit {limit}): {merges}",
        f"give those jobs one schedule, raise trigger_budget to {distinct}, "
        "or raise fold_max_wasted_per_day",
    )
    raise ManifestErrors(c.errors)
