"""A python action's function, found: the project's module imported (the manifest's
folder first on the import path) and the function checked to be an async callable of
one argument.

The executor loads a job's function the first time one of its slots runs;
``cronwright check-actions`` loads every python action up front. Both call
:func:`load`, so they refuse the same things in the same words: each problem is a
permanent :class:`JobFailed` saying what to fix. A slot whose function cannot be loaded
is dead-lettered with it; the worker goes on.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.core.describe import python_type
from engine.core.errors import JobFailed

Function = Callable[[Any], Awaitable[Any]]
ERROR_CLASS = "python_action_invalid"


def load(root: Path, target: str) -> Function:
    """``module.path:function`` of the project in ``root``. Python keeps an imported
    module for the life of the process, so only the first call of a module imports it."""
    module_name, _, name = target.partition(":")
    module = _import(root, module_name)
    where = _relative(root, module)
    try:
        fn = getattr(module, name)
    except AttributeError:
        raise _invalid(
            f"{module_name} ({where}) has no attribute '{name}'",
            f"define async def {name}(run) in {where}, or fix the name",
        ) from None
    if not callable(fn):
        raise _invalid(
            f"{target} is {python_type(fn)}, not a function",
            f"define async def {name}(run) in {where}",
        )
    if not _is_async(fn):
        raise _invalid(
            f"{target} is not an async function; cronwright awaits what it returns",
            f"declare it async def {name}(run)",
        )
    shape = _one_argument_problem(fn)
    if shape is not None:
        raise _invalid(
            f"{target}{shape} cannot be called with one argument (the run)",
            f"declare it async def {name}(run)",
        )
    return fn  # type: ignore[no-any-return]


def _import(root: Path, module_name: str) -> ModuleType:
    folder = root.resolve()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # the project's modules before installed ones
    # A package this process loaded from elsewhere (cronwright's own `engine`, a standard
    # or installed one) is the one Python looks in for the module's other parts: the
    # project's package of that name is never read.
    top = sys.modules.get(module_name.partition(".")[0])
    if top is not None and not _inside(top, folder):
        raise _taken(module_name, top)
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # its code runs: whatever it raises is its own
        raise _invalid(
            f"importing {module_name} failed: {_described(exc)}",
            f"fix the module or what it imports; `python -c 'import {module_name}'` in"
            f" {folder} shows the traceback",
        ) from exc
    if not _inside(module, folder):
        # Imported earlier from elsewhere (a standard or installed module of that name):
        # Python will not import the project's.
        raise _taken(module_name, module)
    return module


def _inside(module: ModuleType, folder: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(folder)


def _taken(module_name: str, module: ModuleType) -> JobFailed:
    origin = getattr(module, "__file__", None) or "Python itself"
    top = module_name.partition(".")[0]
    return _invalid(
        f"{top} is the module from {origin}, not the project's: its name is taken",
        f"rename the project's {'package' if top != module_name else 'module'} {top}",
    )


def _relative(root: Path, module: ModuleType) -> str:
    return Path(str(module.__file__)).resolve().relative_to(root.resolve()).as_posix()


def _is_async(fn: Any) -> bool:
    """``async def``, or an object whose ``__call__`` is (partials unwrap)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (the method itself is checked)
    )


def _one_argument_problem(fn: Any) -> str | None:
    """None when ``fn`` can be called with one positional argument, else its parameters
    (without annotations) to show."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (a builtin): trust the call
        return None
    try:
        sig.bind(None)
    except TypeError:
        bare = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
        return str(sig.replace(parameters=bare, return_annotation=inspect.Signature.empty))
    return None


def _described(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _invalid(message: str, hint: str) -> JobFailed:
    return JobFailed(message, transient=False, error_class=ERROR_CLASS, hint=hint)
