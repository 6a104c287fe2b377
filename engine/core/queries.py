"""cronwright's own SQL, by name. Every statement the runtime and its Postgres adapters
send lives in a ``.sql`` file of ``engine/queries/`` (as procrastinate keeps its
``queries.sql`` beside ``schema.sql``), in blocks that each start with a ``-- name: NAME``
line: ``query("ledger.claim")`` is the block ``claim`` of ``ledger.sql``. A file is read
once, on first use; ``engine/queries/schema.sql`` is what a fresh ``db migrate`` creates.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from engine.core.errors import ConfigError

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _blocks(file: str) -> dict[str, str]:
    text = (resources.files("engine") / "queries" / f"{file}.sql").read_text("utf-8")
    parts = _NAME.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {name: _statement(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _statement(body: str) -> str:
    """A block without its comment lines (its doc) and surrounding blank lines."""
    lines = [line for line in body.splitlines() if not line.startswith("--")]
    return "\n".join(lines).strip()


@cache
def query(name: str) -> str:
    """The statement named ``name`` (``file.block``)."""
    file, _, block = name.partition(".")
    try:
        return _blocks(file)[block]
    except (KeyError, FileNotFoundError):
        raise ConfigError(f"no query named {name!r} in engine/queries/") from None


def names(file: str) -> list[str]:
    """The blocks of one file, in order (for the test that every one is used)."""
    return list(_blocks(file))
