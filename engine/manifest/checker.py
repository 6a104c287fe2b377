"""The checker's error plumbing: every problem is collected as a ManifestError located
in the manifest (``jobs.yaml:LINE:COL: path: problem; fix``), to be raised all at once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.core.errors import Location, ManifestError
from engine.manifest import yamlmarks


def decode(data: bytes, filename: str) -> str:
    """``data`` as UTF-8 text. Bytes that are not UTF-8 raise a ManifestError located at
    the first of them: ``file:line:col: not UTF-8 (byte 0xe9: invalid continuation
    byte); save the file as UTF-8`` (the column counts characters, as YAML's do)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[start : exc.start].decode("utf-8")) + 1
        bad = " ".join(f"0x{b:02x}" for b in data[exc.start : exc.end])
        raise ManifestError(
            f"not UTF-8 (byte {bad}: {exc.reason})",
            hint="save the file as UTF-8",
            location=Location(filename, line, col),
        ) from None


def printable(text: str) -> str:
    """``text`` with what a terminal would not print as itself escaped (a newline, a
    NUL, a bidi override), as Python writes it: one error stays one readable line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _dotted(path: yamlmarks.Path) -> str:
    return ".".join(str(p) for p in path)


class Checker:
    """The problems found so far in one manifest, and where its files live."""

    def __init__(self, filename: str, root: Path) -> None:
        self.filename = filename
        self.root = root
        self.errors: list[ManifestError] = []
        self.marked = yamlmarks.Marked(data=None)
        self._folders: dict[str, Path] = {}

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
                printable(problem),
                hint=printable(hint),
                path=printable(_dotted(path)) or None,
                location=Location(self.filename, line, col),
            )
        )

    def read_text(self, rel: str) -> str | None:
        """The text of ``rel`` (relative to the manifest); None when it is not UTF-8,
        which is reported at its first bad byte. Raises OSError when it cannot be read."""
        try:
            where = printable(str(Path(self.filename).parent / rel))
            return decode((self.root / rel).read_bytes(), where)
        except ManifestError as exc:
            self.errors.append(exc)
            return None
        except ValueError as exc:  # a name no file system takes (a NUL in it)
            raise FileNotFoundError(str(exc)) from exc

    def is_file(self, rel: str) -> bool:
        """Is ``rel`` (relative to the manifest) a file? False for a name no file system
        takes (too long, a NUL), not an error."""
        try:
            return (self.root / rel).is_file()
        except (OSError, ValueError):
            return False

    def inside(self, rel: str, folder: str = "") -> bool:
        """Does ``rel`` (relative to the manifest), resolved with its symlinks and ``..``,
        stay below ``folder`` of the project?"""
        try:
            if folder not in self._folders:  # a thousand templates share sql/
                self._folders[folder] = (self.root / folder).resolve()
            return self._folders[folder] in (self.root / rel).resolve().parents
        except ValueError:  # a NUL: no file can have this name, so read_text finds none
            return True

    @staticmethod
    def jobs(data: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The manifest's jobs that are mappings, by name."""
        jobs = data.get("jobs")
        if isinstance(jobs, dict):
            for name, job in jobs.items():
                if isinstance(job, dict):
                    yield str(name), job
