"""YAML with line marks: the data, plus where each key and value sits in the file.

PyYAML silently keeps the last of two equal keys; a manifest keyed by job name must
not, so duplicates are reported here with both positions.

Nothing downstream walks an unbounded tree:

- Anchors and aliases are allowed (a shared retry block is handy), but what aliases add
  when expanded is bounded: ``MAX_ALIAS_NODES`` nodes in all, counted as each alias is
  read, before anything walks the tree. Beyond it (a "billion laughs" document), or for
  an alias inside the node it names, the error names the alias's position.
- Nesting is bounded at ``MAX_DEPTH`` levels (a manifest needs about six).

Two ways to the nodes, one answer. PyYAML's own parser with the composer here
(:class:`_BoundedComposer`) checks the bounds as it reads, and so can name the alias or
the level that breaks one. When PyYAML has libyaml, libyaml composes the nodes (three
times faster at 1,000 jobs; its aliases are shared nodes, so composing costs what the
text holds) and :func:`_within_bounds` measures the composed graph; a document it finds
outside a bound, or one libyaml cannot read, is read again the first way, which gives
the located error (or, for a deep alias that is not too deep where it is written, the
document). So neither the messages nor what is accepted depend on the parser installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
import yaml.composer
import yaml.constructor
import yaml.nodes
import yaml.parser
import yaml.reader
import yaml.resolver
import yaml.scanner

Path = tuple[str | int, ...]

#: How many nodes aliases may add to the document when expanded.
MAX_ALIAS_NODES = 100_000
#: How deep collections may nest.
MAX_DEPTH = 64


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


class YamlRefused(Exception):
    """Well-formed YAML refused before it is walked: an alias that expands too far or
    into itself, or nesting too deep. Positioned (1-based) at ``path``."""

    def __init__(self, path: Path, problem: str, hint: str, line: int, col: int) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem
        self.hint = hint
        self.line = line
        self.col = col


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting what aliases add and how deep the nodes nest."""

    peek_event: Callable[[], Any]  # from the parser it is mixed with

    def __init__(self) -> None:
        super().__init__()
        self._sizes: dict[int, int] = {}  # id(node) -> nodes when expanded, once complete
        self._added = 0
        self._path: list[str | int] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # index: None for a key (or the root), the key node for a value, an int in a list
        inside = parent is not None and index is not None
        if inside:
            self._path.append(index if isinstance(index, int) else _key_text(index))
        try:
            return self._compose(parent, index)
        finally:
            if inside:
                self._path.pop()

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.ScalarEvent):  # most nodes: no alias, no nesting
            scalar = super().compose_node(parent, index)
            assert scalar is not None
            self._sizes[id(scalar)] = 1
            return scalar
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            size = self._sizes.get(id(self.anchors[event.anchor]))
            if size is None:
                self._refuse(
                    f"alias '*{event.anchor}' is inside the node it names, which would"
                    " make the manifest infinite",
                    "write the values out instead of the alias",
                    event.start_mark,
                )
            self._added += size
            if self._added > MAX_ALIAS_NODES:
                self._refuse(
                    f"YAML aliases expand the manifest by more than {MAX_ALIAS_NODES}"
                    f" nodes (alias '*{event.anchor}' adds {size})",
                    "share smaller blocks through anchors, or write the values out",
                    event.start_mark,
                )
            target = super().compose_node(parent, index)
            assert target is not None
            return target
        if len(self._path) >= MAX_DEPTH:
            self._refuse(
                f"the YAML nests deeper than {MAX_DEPTH} levels",
                "flatten this value",
                event.start_mark,
            )
        node = super().compose_node(parent, index)
        assert node is not None
        sizes = self._sizes
        if isinstance(node, yaml.MappingNode):
            self._sizes[id(node)] = 1 + sum(sizes[id(k)] + sizes[id(v)] for k, v in node.value)
        else:
            self._sizes[id(node)] = 1 + sum(sizes[id(item)] for item in node.value)
        return node

    def _refuse(self, problem: str, hint: str, mark: Any) -> NoReturn:
        raise YamlRefused(tuple(self._path), problem, hint, *_at(mark))


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "?"


class _Constructor(yaml.constructor.SafeConstructor):
    """PyYAML's safe constructor, with a value it cannot make (a timestamp on the 31st of
    February, an integer of 5,000 digits) reported as a located YAML error, not raised."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark
            ) from exc


class _PyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    _Constructor,
    yaml.resolver.Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


_LOADERS: list[type[Any]] = [_PyLoader]
try:
    from yaml._yaml import CParser  # libyaml, when PyYAML was built with it
except ImportError:  # pragma: no cover - PyYAML without libyaml
    pass
else:

    class _CLoader(CParser, _Constructor, yaml.resolver.Resolver):
        """libyaml's parser and composer (``yaml.CSafeLoader`` with our constructor)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _LOADERS.insert(0, _CLoader)


def load(text: str) -> Marked:
    """The document with its marks. Raises YamlSyntaxError or YamlRefused."""
    *faster, python = _LOADERS
    if faster:
        try:
            marked = _load(faster[0], text, check=_within_bounds)
        except yaml.YAMLError:
            marked = None  # read again below, for PyYAML's wording of the error
        if marked is not None:
            return marked
        # None: outside a bound, read again below for the located error
    try:
        found = _load(python, text)
    except yaml.YAMLError as exc:
        raise _syntax(exc, text) from exc
    assert found is not None
    return found


def _load(
    cls: type[Any], text: str, *, check: Callable[[yaml.Node], bool] | None = None
) -> Marked | None:
    """The document read by ``cls``; None when ``check`` refuses its nodes."""
    loader = cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Marked(data=None)
        if check is not None and not check(node):
            return None
        marked = Marked(data=None)
        _walk(node, (), marked)
        marked.data = loader.construct_document(node)
        return marked
    finally:
        loader.dispose()


def _within_bounds(root: yaml.Node) -> bool:
    """Whether composed nodes keep the bounds: no node inside itself, at most
    ``MAX_DEPTH`` levels of collections on any path (aliases followed: never less than the
    written nesting), and at most ``MAX_ALIAS_NODES`` nodes added by aliases (the
    expanded size less the nodes composed, each alias a shared node). One pass, without
    recursion, over the nodes as composed."""
    size: dict[int, int] = {}  # id -> nodes when expanded, once done
    height: dict[int, int] = {}  # id -> collections on the longest path down, once done
    started: set[int] = set()
    todo: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    while todo:
        node, kids = todo.pop()  # kids: None until the node's children are pushed
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            size[key], height[key] = 1, 0
            continue
        if kids is not None:
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            if height[key] > MAX_DEPTH:
                return False
            continue
        if key in size:
            continue  # an alias's node, already measured
        if key in started:
            return False  # reached again before it was done: it is inside itself
        started.add(key)
        kids = _children(node)
        todo.append((node, kids))
        todo += [(k, None) for k in kids]
    return size[id(root)] - len(size) <= MAX_ALIAS_NODES


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value)


def _syntax(exc: yaml.YAMLError, text: str) -> YamlSyntaxError:
    if isinstance(exc, yaml.MarkedYAMLError):
        line, col = _at(exc.problem_mark or exc.context_mark)
        return YamlSyntaxError(exc.problem or exc.context or "invalid YAML", line, col)
    if isinstance(exc, yaml.reader.ReaderError):
        # position is the character's index in the whole text
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - before.rfind("\n")
        return YamlSyntaxError(f"unacceptable character #x{exc.character:04x}", line, col)
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
