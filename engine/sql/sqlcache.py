"""Compiled SQL templates kept on disk between processes, as Python keeps ``__pycache__``
and Jinja its bytecode cache: what parsing, instrumenting and compiling a template's text
gave (its code object, the names it reads, its reaches for private attributes), so that
``validate``, ``generate`` and a starting ``serve`` do not compile a thousand unchanged
templates again. At 1,000 distinct templates that is about half of ``validate``'s time.

An entry is found by a hash of the template's text and of everything its compiled form
depends on: Python's bytecode tag, Jinja's version and the text of the modules that shape
the generated code (the sandbox, its budget and the environment), so a change to any of
them misses instead of reusing stale code. Only successful compilations are stored. Any
failure to read or write (a missing, unwritable or corrupt cache) is a miss, never an
error: the cache can be deleted at any time.

Where: ``$CRONWRIGHT_CACHE_DIR``, else ``$XDG_CACHE_HOME/cronwright``, else
``~/.cache/cronwright``; ``CRONWRIGHT_CACHE_DIR=off`` (or empty) turns it off. The folder
is created readable by its owner only, and not used when anyone else can write to it: its
entries are code this process will run.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import CodeType

import jinja2

#: Bumped when the entries' layout changes.
_FORMAT = b"cronwright-template-cache-1"

Entry = tuple[CodeType, frozenset[str], tuple[tuple[int, str], ...]]


def folder(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The cache's folder, or None when it is turned off."""
    configured = environ.get("CRONWRIGHT_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off") else Path(configured)
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cronwright"


class Cache:
    """The cache of compiled templates whose compiled form depends on the text of the
    ``depends`` files (the modules that generate the code) besides the template's."""

    def __init__(self, *depends: Path) -> None:
        self.depends = depends

    @functools.cached_property
    def _salt(self) -> bytes:
        h = hashlib.sha256(_FORMAT)
        h.update(str(sys.implementation.cache_tag).encode())
        h.update(jinja2.__version__.encode())
        for path in self.depends:
            h.update(path.read_bytes())
        return h.digest()

    def path(self, source: str) -> Path | None:
        """Where ``source``'s entry lives, or None when the cache is off."""
        where = folder()
        if where is None:
            return None
        key = hashlib.sha256(self._salt + source.encode("utf-8", "surrogatepass")).hexdigest()
        return where / "templates" / f"{key}.bin"

    def load(self, source: str) -> Entry | None:
        """The stored compilation of ``source``, or None (not stored, or unreadable)."""
        try:
            path = self.path(source)
            if path is None:
                return None
            if not _trusted(path.parent):
                return None
            code, reads, private = marshal.loads(path.read_bytes())
            if not isinstance(code, CodeType):
                return None
            return (
                code,
                frozenset(str(r) for r in reads),
                tuple((int(line), str(name)) for line, name in private),
            )
        except Exception:  # anything wrong with an entry (truncated, foreign, stale) is a miss
            return None

    def store(self, source: str, entry: Entry) -> None:
        """Keep ``entry`` for ``source``; nothing happens when the cache cannot be
        written."""
        code, reads, private = entry
        try:
            path = self.path(source)
            if path is None:
                return
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _trusted(path.parent):
                return
            data = marshal.dumps((code, tuple(sorted(reads)), private))
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)  # readers see the old entry or the whole new one
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except (OSError, ValueError):
            return


def _trusted(where: Path) -> bool:
    """Is ``where`` this user's, and writable by no one else? Entries are code that will
    run: a folder others can write to is not read (nor written)."""
    st = where.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
