"""Who is told: each ``notify:`` target's Apprise URL (top level and per job) and a job's
``healthcheck:`` URL, with ``${NAME}`` references to the environment (engine/core/envurl.py).
Nothing is looked up or sent here."""

from __future__ import annotations

from engine.core import envurl
from engine.manifest import yamlmarks
from engine.manifest.checker import Checker

HEALTHCHECK_SCHEMES = ("https", "http")


def check_notify(c: Checker, path: yamlmarks.Path, entries: object) -> None:
    """Each notification target's URL: ``scheme://...`` with well-formed ``${NAME}``s."""
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str):
            problem = envurl.problem(url)
            if problem is not None:
                c.error((*path, i, "url"), *problem)


def check_healthcheck(c: Checker, path: yamlmarks.Path, url: object) -> None:
    """A healthcheck is pinged over HTTP(S)."""
    if isinstance(url, str):
        problem = envurl.problem(url, schemes=HEALTHCHECK_SCHEMES)
        if problem is not None:
            c.error(path, *problem)
