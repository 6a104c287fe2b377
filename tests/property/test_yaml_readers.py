"""The manifest's YAML is read by libyaml's composer when PyYAML has it, and by PyYAML's
own parser with cronwright's bounded composer otherwise (engine/manifest/yamlmarks.py).
Whatever the text, both give the same data, marks and duplicates, or the same located
error: what a manifest means never depends on the parser installed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.manifest import yamlmarks

pytestmark = pytest.mark.skipif(
    len(yamlmarks._LOADERS) < 2, reason="PyYAML was built without libyaml"
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["yes", "1e3", "0x1F", "2026-02-31", "~", "<<", "*a", "&b", "- x"]),
)
keys = st.one_of(st.text(max_size=6), st.integers(-3, 3))


def trees(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=30,
    )


@st.composite
def documents(draw: st.DrawFn) -> str:
    """YAML text: a tree whose blocks are shared (yaml.dump writes a block used twice as
    an anchor and aliases), sometimes nested deep, sometimes with a duplicate key or a
    line of noise spliced in."""
    shared = draw(st.lists(trees(scalars), min_size=1, max_size=3))
    body = draw(trees(st.one_of(scalars, st.sampled_from(shared))))
    depth = draw(st.sampled_from([0, 0, 0, 63, 64, 65]))
    for _ in range(depth):
        body = [body]
    flow = draw(st.booleans())
    text = yaml.dump({"doc": body, "again": shared}, default_flow_style=flow, sort_keys=False)
    splice = draw(st.sampled_from(["", "doc: 1\n", "again: [*x]\n", "x: &y [*y]\n", ": :\n"]))
    lines = text.splitlines(keepends=True)
    at = draw(st.integers(0, len(lines)))
    return "".join([*lines[:at], splice, *lines[at:]])


def outcome(read: Any) -> Any:
    try:
        marked = read()
    except yamlmarks.YamlRefused as exc:
        return ("refused", exc.path, exc.problem, exc.hint, exc.line, exc.col)
    except yamlmarks.YamlSyntaxError as exc:
        return ("syntax", exc.problem, exc.line, exc.col)
    return (repr(marked.data), marked.values, marked.keys, marked.duplicates)


def python_only(text: str) -> yamlmarks.Marked:
    try:
        found = yamlmarks._load(yamlmarks._LOADERS[-1], text)
    except yaml.YAMLError as exc:
        raise yamlmarks._syntax(exc, text) from exc
    assert found is not None
    return found


@pytest.mark.fuzz  # examples: the profile's (tests/conftest.py)
@given(documents())
def test_libyaml_and_pythons_parser_read_any_text_the_same(text: str) -> None:
    assert outcome(lambda: yamlmarks.load(text)) == outcome(lambda: python_only(text))


def test_an_alias_nested_deeper_than_where_it_is_written_is_read_by_either_parser() -> None:
    # The anchored block is 40 levels deep where written and used 40 levels down: the
    # composed graph is 80 deep, which libyaml's reader hands to the bounded composer.
    block = "[" * 40 + "1" + "]" * 40
    text = f"a: &a {block}\nb: {'[' * 40}*a{']' * 40}\n"
    marked = yamlmarks.load(text)
    assert marked.data == python_only(text).data
    inner = marked.data["b"]
    for _ in range(80):
        inner = inner[0]
    assert inner == 1
