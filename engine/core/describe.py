"""How error messages show a value and name its type, defined once for the manifest's
messages and the queue messages'."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

Dialect = Literal["yaml", "json"]


def show(value: object, limit: int = 80) -> str:
    """A value as an error message quotes it: a string in quotes (control characters
    escaped), anything else as JSON; cut at ``limit`` characters."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "...")
    try:
        text = json.dumps(value, default=str)
    except TypeError:  # a key JSON has none of: YAML reads 2026-01-01 as a date
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def type_name(value: object, *, dialect: Dialect) -> str:
    """The kind of ``value`` in the words of the document it came from: YAML's (mapping,
    list, integer) for the manifest, JSON's (object, array, number) for a queue message."""
    yaml = dialect == "yaml"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if yaml else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping" if yaml else "object"
    if isinstance(value, list):
        return "list" if yaml else "array"
    return type(value).__name__


def python_type(value: object) -> str:
    """The Python type of ``value`` with its article: ``an int``, ``a str``."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
