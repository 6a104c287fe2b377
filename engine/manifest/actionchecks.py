"""A job's action: a built-in one (``name`` and the ``sql`` whose rows it takes) or
``python: module.path:function``, whose module must be a file of the project. Nothing
is imported: validation runs no project code."""

from __future__ import annotations

import keyword
import sys
from collections.abc import Mapping
from typing import Any

from engine.manifest import yamlmarks
from engine.manifest.checker import Checker

_OWN = __name__.partition(".")[0]  # cronwright's import package: `engine`


def check_action(
    c: Checker, at: yamlmarks.Path, action: Mapping[str, Any], data: Mapping[str, Any]
) -> None:
    """One job's ``action:`` block, at ``at``."""
    has_name, has_python = "name" in action, "python" in action
    if has_name and has_python:
        c.error(at, "an action is either a built-in 'name' or 'python', not both", "keep one")
    elif not has_name and not has_python:
        c.error(
            at,
            "an action needs 'name' (a built-in action) or 'python' (an async function)",
            "add python: module.path:function, or name: warmup-reset with its sql:",
        )
    elif has_name and "sql" not in action:
        c.error(
            at,
            f"the built-in action {action['name']!r} needs 'sql', the query whose rows it takes",
            "add sql: sql/FILE.sql",
        )
    elif has_python and "sql" in action:
        c.error(
            (*at, "sql"),
            "a python action takes no 'sql'",
            "remove sql: (the function runs its own statements on the connection it gets)",
        )
    if action.get("name") == "warmup-reset" and not isinstance(data.get("r2_bucket"), dict):
        c.error(
            (*at, "name"),
            "the warmup-reset action needs an R2 bucket",
            "add an 'r2_bucket:' section",
        )
    target = action.get("python")
    if isinstance(target, str):
        _check_python(c, (*at, "python"), target)


def _check_python(c: Checker, path: yamlmarks.Path, target: str) -> None:
    """``module.path:function`` names a module file of the project. Nothing is imported
    (validation runs no project code)."""
    module, _, function = target.partition(":")
    parts = module.split(".")
    if not function or not all(p.isidentifier() for p in [*parts, function]):
        return  # the schema's pattern reports it
    reserved = [p for p in [*parts, function] if keyword.iskeyword(p)]
    if reserved:
        c.error(
            path,
            f"'{reserved[0]}' is a Python keyword, not a module or function name",
            "rename the module or function",
        )
        return
    top = parts[0]
    if top == _OWN or top in sys.stdlib_module_names:
        whose = "cronwright's own package" if top == _OWN else "a standard library module"
        c.error(
            path,
            f"'{top}' is {whose}: Python imports that one, never the project's {top}",
            f"rename the project's {'package' if len(parts) > 1 else 'module'} {top}",
        )
        return
    candidates = module_files(module)
    if not any(c.inside(f) and (c.root / f).is_file() for f in candidates):
        c.error(
            path,
            f"module '{module}' is not in the project: neither {candidates[0]} nor"
            f" {candidates[1]} exists beside the manifest",
            f"create {candidates[0]} with 'async def {function}(run)', or fix the name",
        )


def module_files(module: str) -> tuple[str, str]:
    """The files, relative to the project's folder, that may hold ``module``: a module
    or a package."""
    rel = module.replace(".", "/")
    return f"{rel}.py", f"{rel}/__init__.py"
