"""YAML with line marks: the data, plus where each key and value sits in the file.

PyYAML silently keeps the last of two equal keys; a manifest keyed by job name must
not, so duplicates are reported here with both positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass
class Marked:
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[Path, tuple[int, int], tuple[int, int]]] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The closest known position for ``path`` (1-based line and column)."""
        table = self.keys if key else self.values
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


class YamlSyntaxError(Exception):
    """Raised with a 1-based position; manifest.py turns it into a ManifestError."""

    def __init__(self, problem: str, line: int, col: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.col = col


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load(text: str) -> Marked:
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise _syntax(exc) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return Marked(data=None)
        marked = Marked(data=None)
        _walk(node, (), marked)
        marked.data = loader.construct_document(node)
        return marked
    except yaml.YAMLError as exc:
        raise _syntax(exc) from exc
    finally:
        loader.dispose()


def _syntax(exc: yaml.YAMLError) -> YamlSyntaxError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return YamlSyntaxError(exc.problem or exc.context or "invalid YAML", line, col)
    if isinstance(exc, yaml.reader.ReaderError):
        return YamlSyntaxError(f"unacceptable character #x{exc.character:04x}", 1, exc.position + 1)
    return YamlSyntaxError(str(exc).splitlines()[0], 1, 1)


def _walk(node: yaml.Node, path: Path, marked: Marked) -> None:
    marked.values.setdefault(path, _pos(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = (*path, key)
            if key in seen:
                marked.duplicates.append((child, seen[key], _pos(key_node)))
                continue
            seen[key] = _pos(key_node)
            marked.keys[child] = _pos(key_node)
            _walk(value_node, child, marked)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), marked)
