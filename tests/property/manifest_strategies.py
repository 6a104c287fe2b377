"""Hypothesis strategies for whole projects: manifests built from the JSON Schema
(engine/manifest/jobs.schema.json), with cron, zone and template values a project would
really have, then mutated the ways an unlucky or hostile author would: wrong types, huge
values and strings, control characters, deep nesting, duplicate keys, anchors and alias
bombs, bytes that are not UTF-8, and templates that loop, multiply or recurse."""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import strategies as st

from engine.manifest import schema

CRONS = ["0 * * * *", "*/5 * * * *", "30 2 * * MON-FRI", "0 0 L * *", "0 9 * * MON#1", "* * * *"]
ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Mars/Olympus", ""]
GOOD_SQL = "SELECT {{ window_start }}, {{ params.x | default(1) }};\n"
BAD_SQL = [
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    '{{ "x" * 3000000000 }}',
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{{ 1 / 0 }}",
    "{{ window_start.__class__ }}",
    "{% if %}",
    "{{ nope }}",
    "{{ params.missing.deeper }}",
    "{{ 'x' | center(2000000000) }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ lipsum(10 ** 9) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}",
    "{{ '%2000000000d' % 1 }}",
    "{{ params | unknownfilter }}",
]
CONTROL = "\x00\x07\x08\x1b\x7f\u0085\u2028\u202e\ufeff\n\r\t"


def _ref(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: dict[str, Any] = schema.schema()["$defs"][ref.rsplit("/", 1)[-1]]
        return target
    return node


@st.composite
def from_schema(draw: st.DrawFn, node: dict[str, Any], name: str = "") -> Any:
    """A value that the schema node describes (mostly valid: mutations come later)."""
    node = _ref(node)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    kind = node.get("type")
    if name == "cron":
        return draw(st.sampled_from(CRONS))
    if name == "timezone":
        return draw(st.sampled_from(ZONES))
    if kind == "object":
        props: dict[str, Any] = node.get("properties", {})
        required = set(node.get("required", []))
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or draw(st.integers(0, 3)) == 0:
                out[key] = draw(from_schema(sub, key))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            pattern = _ref(node.get("propertyNames", {})).get("pattern", "^[a-z][a-z0-9-]*$")
            for key in draw(st.lists(st.from_regex(pattern, fullmatch=True), max_size=3)):
                out[key] = draw(from_schema(extra, key))
        return out
    if kind == "string":
        pattern = node.get("pattern")
        if pattern:
            return draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) < 80))
        return draw(st.text(max_size=20))
    if kind == "integer":
        lo, hi = node.get("minimum", -5), node.get("maximum", 10**6)
        return draw(st.integers(lo, hi))
    if kind == "boolean":
        return draw(st.booleans())
    if kind == "array":
        return draw(st.lists(from_schema(node.get("items", {})), max_size=3))
    return draw(st.dictionaries(st.sampled_from("xyz"), st.integers(0, 9), max_size=2))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] or [path]
    return [path]


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = dict(value)
    out[path[0]] = _set(value[path[0]], path[1:], new)
    return out


_HUGE = "huge-integer-here"  # written as 5,000 digits: Python prints no int that long
WILD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.just("x" * 200_000),
    st.just(_HUGE),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


class Project:
    """What to write: the manifest's bytes and the templates' (by path under sql/). A plain
    class, not a dataclass: Hypothesis prints a failing example with its ``__repr__``
    (it would print a dataclass field by field, a 200 KB string included)."""

    def __init__(self, manifest: bytes, templates: dict[str, bytes]) -> None:
        self.manifest = manifest
        self.templates = templates

    def __repr__(self) -> str:
        def cut(b: bytes) -> str:
            return repr(b) if len(b) <= 2000 else f"{b[:2000]!r} + <{len(b) - 2000} bytes>"

        templates = {k: cut(v) for k, v in self.templates.items()}
        return f"Project(manifest={cut(self.manifest)}, templates={templates})"


@st.composite
def projects(draw: st.DrawFn) -> Project:
    data = draw(from_schema(schema.schema()))
    for _ in range(draw(st.integers(0, 3))):  # wrong types, huge values, odd strings
        where = draw(st.sampled_from(_leaves(data)))
        data = _set(data, where, draw(WILD))
    templates: dict[str, bytes] = {}
    jobs = data.get("jobs") if isinstance(data.get("jobs"), dict) else {}
    for job in jobs.values():
        if isinstance(job, dict) and isinstance(job.get("sql"), str):
            body = draw(st.sampled_from([GOOD_SQL, *BAD_SQL]))
            templates[job["sql"]] = body.encode() + draw(st.sampled_from([b"", b"\xff\xfe"]))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    text = draw(_mutated(text.replace(_HUGE, "9" * 5000)))
    raw = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # bytes that are not UTF-8
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80"]))
            + raw[at:]
        )
    return Project(raw, templates)


@st.composite
def _mutated(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    kinds = ["none", "duplicate", "control", "nest", "alias", "bomb", "cut", "key"]
    kind = draw(st.sampled_from(kinds))
    if kind == "duplicate" and lines:  # a key line (and what follows it) written twice
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
    elif kind == "control" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        ch = draw(st.sampled_from(CONTROL))
        at = draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:at] + ch + lines[i][at:]
    elif kind == "nest":
        depth = draw(st.integers(10, 3000))
        lines.append("deep: " + "[" * depth + "]" * depth + "\n")
    elif kind == "alias":
        lines.insert(0, "shared: &shared {a: 1, b: [1, 2, 3]}\n")
        lines.append(draw(st.sampled_from(["again: *shared\n", "self: &s [*s]\n", "x: *nope\n"])))
    elif kind == "bomb":
        bomb = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n']
        bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)]
        lines += bomb
    elif kind == "key" and lines:  # a key YAML reads as a number, a date, null or a list
        i = draw(st.integers(0, len(lines) - 1))
        odd = draw(st.sampled_from(["1", "null", "2026-01-01", "true", "1.5", "? [a]\n "]))
        lines[i] = re.sub(r"^(\s*)[^\s:#-][^:]*:", lambda m: f"{m[1]}{odd}:", lines[i], count=1)
    elif kind == "cut" and text:
        return text[: draw(st.integers(0, len(text)))]
    return "".join(lines)
