"""URLs that name their secrets instead of holding them: ``${NAME}`` is replaced from the
environment when the URL is used (notification targets, healthchecks), so neither the
manifest nor any message that quotes a URL carries a secret. Validation and the runtime
read the references with the same two functions."""

from __future__ import annotations

import re
from collections.abc import Mapping

from engine.core.errors import ConfigError

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://\S")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def problem(url: str, *, schemes: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(problem, fix) when ``url`` is not ``scheme://...`` (one of ``schemes`` when given)
    or holds a malformed ``${NAME}``; None when it is fine. Nothing is looked up."""
    match = _SCHEME.match(url)
    example = f"{schemes[0] if schemes else 'json'}://host/path"
    if match is None:
        return (
            f"'{url}' is not a URL of the form scheme://...",
            f"write the scheme first, e.g. {example}; put secrets in ${{NAME}}",
        )
    if schemes and match.group(1).lower() not in schemes:
        return (
            f"scheme '{match.group(1)}' is not {' or '.join(schemes)}",
            f"use a URL such as {example}",
        )
    for start in _starts(url):
        end = url.find("}", start)
        name = url[start + 2 : end] if end != -1 else None
        if name is None or _NAME.fullmatch(name) is None:
            shown = url[start:] if end == -1 else url[start : end + 1]
            return (
                f"'{shown}' is not a reference to an environment variable",
                "write ${NAME}, NAME being letters, digits and '_' (not starting with a digit)",
            )
    return None


def names(url: str) -> tuple[str, ...]:
    """The environment variables ``url`` refers to, in order of appearance."""
    found = []
    for start in _starts(url):
        end = url.find("}", start)
        if end != -1 and _NAME.fullmatch(url[start + 2 : end]):
            found.append(url[start + 2 : end])
    return tuple(found)


def expand(url: str, environ: Mapping[str, str]) -> str:
    """``url`` with each ``${NAME}`` replaced by its value in ``environ``. A variable that
    is not set is a ConfigError naming it (never a value)."""
    out, pos = [], 0
    for start in _starts(url):
        end = url.find("}", start)
        name = url[start + 2 : end] if end != -1 else ""
        if _NAME.fullmatch(name) is None:
            continue
        if name not in environ:
            raise ConfigError(
                f"environment variable {name} is not set",
                hint=f"set {name}: a URL in the manifest refers to it",
            )
        out += [url[pos:start], environ[name]]
        pos = end + 1
    out.append(url[pos:])
    return "".join(out)


def _starts(url: str) -> list[int]:
    return [m.start() for m in re.finditer(r"\$\{", url)]
