"""The manifest's JSON Schema (shipped as engine/manifest/jobs.schema.json, also for editors) and
the translation of schema violations into ``file:line:col: path: problem; fix`` errors."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from engine.core.describe import show, type_name
from engine.manifest.yamlmarks import Path

SCHEMA_FILE = "jobs.schema.json"


@cache
def schema() -> dict[str, Any]:
    text = resources.files("engine.manifest").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    return cls(schema())


class Violation:
    """One schema problem, positioned at ``path`` (``key`` when it is about a key)."""

    def __init__(self, path: Path, problem: str, hint: str, *, key: bool = False) -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        self.key = key


def violations(data: Any) -> list[Violation]:
    out: list[Violation] = []
    for err in _validator().iter_errors(data):
        out.extend(_explain(err))
    return out


def _explain(err: jsonschema.ValidationError) -> list[Violation]:
    path: Path = tuple(err.absolute_path)
    sub = err.schema if isinstance(err.schema, dict) else {}
    hint = sub.get("x-hint", "")
    value = err.instance
    kind = err.validator
    if "propertyNames" in err.relative_schema_path and kind in ("type", "pattern"):
        # a key YAML read as a number, a date or null fails "type"; a bad name "pattern"
        return [
            Violation(
                (*path, str(value)),
                f"name {show(value)} is not allowed",
                hint or "use lower-case letters, digits and '-'",
                key=True,
            )
        ]
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(sub.get("properties", {}))
        extra = sorted(set(value) - set(allowed), key=str)  # YAML keys may be numbers
        return [_unknown_key(path, str(k), allowed) for k in extra]
    if kind == "required":
        missing = _missing(err)
        return [Violation(path, f"missing required key '{missing}'", f"add '{missing}:'")]
    if kind == "type":
        raw: Any = err.validator_value
        want = " or ".join(raw) if isinstance(raw, list) else str(raw)
        want = {"object": "a mapping", "array": "a list"}.get(want, want)
        return [
            Violation(
                path,
                f"expected {want}, got {type_name(value, dialect='yaml')} {show(value)}",
                hint or f"write {want}",
            )
        ]
    if kind == "enum":
        options: list[Any] = list(err.validator_value)  # type: ignore[arg-type]
        choices = ", ".join(str(c) for c in options)
        close = difflib.get_close_matches(str(value), [str(c) for c in options], 1)
        fix = f"did you mean '{close[0]}'?" if close else f"use one of {choices}"
        return [Violation(path, f"{show(value)} is not one of {choices}", fix)]
    if kind == "const":
        return [
            Violation(
                path,
                f"{show(value)} is not {show(err.validator_value)}",
                hint or f"write {show(err.validator_value)}",
            )
        ]
    if kind in ("maximum", "minimum"):
        bound = err.validator_value
        limit = sub.get("x-limit")
        rel = "above the maximum" if kind == "maximum" else "below the minimum"
        problem = f"{show(value)} is {rel} {bound}"
        if limit:
            problem += f" ({limit})"
        return [
            Violation(path, problem, f"use a value {'<=' if kind == 'maximum' else '>='} {bound}")
        ]
    if kind == "pattern":
        return [
            Violation(
                path,
                f"{show(value)} is not a valid value",
                hint or f"match the pattern {err.validator_value}",
            )
        ]
    if kind == "propertyNames":
        return [
            Violation(
                (*path, str(value)),
                f"name {show(value)} is not allowed",
                "use lower-case letters, digits and '-'",
                key=True,
            )
        ]
    if kind == "minProperties":
        return [Violation(path, "is empty", "add at least one entry")]
    return [Violation(path, err.message, hint or "see engine/manifest/jobs.schema.json")]


def _missing(err: jsonschema.ValidationError) -> str:
    # jsonschema words it "'cron' is a required property"
    return err.message.split("'")[1] if "'" in err.message else str(err.message)


def _unknown_key(path: Path, key: str, allowed: list[str]) -> Violation:
    close = difflib.get_close_matches(key, allowed, 1, 0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
    return Violation((*path, key), "unknown key", hint, key=True)
