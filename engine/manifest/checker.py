"""The checker's error plumbing: every problem is collected as a ManifestError located
in the manifest (``jobs.yaml:LINE:COL: path: problem; fix``), to be raised all at once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.core.errors import Location, ManifestError
from engine.manifest import yamlmarks


def _dotted(path: yamlmarks.Path) -> str:
    return ".".join(str(p) for p in path)


class Checker:
    """The problems found so far in one manifest, and where its files live."""

    def __init__(self, filename: str, root: Path) -> None:
        self.filename = filename
        self.root = root
        self.errors: list[ManifestError] = []
        self.marked = yamlmarks.Marked(data=None)

    def error(
        self,
        path: yamlmarks.Path,
        problem: str,
        hint: str,
        *,
        key: bool = False,
        at: tuple[int, int] | None = None,
    ) -> None:
        line, col = at or self.marked.where(path, key=key)
        self.errors.append(
            ManifestError(
                problem,
                hint=hint,
                path=_dotted(path) or None,
                location=Location(self.filename, line, col),
            )
        )

    def inside(self, rel: str, folder: str = "") -> bool:
        """Does ``rel`` (relative to the manifest), resolved with its symlinks and ``..``,
        stay below ``folder`` of the project?"""
        return (self.root / folder).resolve() in (self.root / rel).resolve().parents

    @staticmethod
    def jobs(data: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The manifest's jobs that are mappings, by name."""
        jobs = data.get("jobs")
        if isinstance(jobs, dict):
            for name, job in jobs.items():
                if isinstance(job, dict):
                    yield str(name), job
