"""Keeping secrets out of text: the one scrub that error messages, output and log records
go through, and a logging filter that applies it.

A server may echo part of a credential (a 403 body quoting a token's first and last
characters), so a scrub that only matched whole secrets let fragments through. Here any
run of :data:`FRAGMENT` or more characters of a known secret is masked; a secret shorter
than that is masked where it appears whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"
#: Any run of this many characters of a secret is masked (shorter runs are too common in
#: ordinary text to mean anything).
FRAGMENT = 8


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every whole secret and every run of :data:`FRAGMENT` or more
    characters of one replaced by ``***``."""
    secrets = [s for s in secrets if s]
    if not secrets or not text:
        return text
    for secret in (s for s in secrets if len(s) < FRAGMENT):
        text = text.replace(secret, MASK)
    windows = {s[i : i + FRAGMENT] for s in secrets for i in range(len(s) - FRAGMENT + 1)}
    if not windows:
        return text
    # A mask between two kept characters could complete a new fragment (a secret holding
    # '*'): repeat until none is left. Each pass shortens the text, so this ends.
    while (masked := _mask_windows(text, windows)) != text:
        text = masked
    return text


def _mask_windows(text: str, windows: set[str]) -> str:
    """``text`` with each maximal run of characters that windows cover replaced by
    ``***`` (overlapping and touching windows make one run)."""
    out: list[str] = []
    kept = 0  # text[:kept] is written out or masked
    run_end = -1  # the end of the covered run in progress
    for i in range(len(text) - FRAGMENT + 1):
        if text[i : i + FRAGMENT] in windows:
            if i > run_end:  # apart from the run in progress: close it, start another
                if run_end >= 0:
                    out.append(MASK)
                out.append(text[kept:i])
            run_end = kept = i + FRAGMENT
    if run_end < 0:
        return text
    out += [MASK, text[kept:]]
    return "".join(out)


class ScrubSecrets(logging.Filter):
    """A logging filter that scrubs a record in place: its message (formatted with its
    arguments), its traceback and its stack; it never drops a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a format that does not fit its args
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = scrub(message, self.secrets), None
        if record.exc_info:
            # Formatters print exc_text when it is set; the exception itself, whose text
            # holds the secret, goes.
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, scrub(text, self.secrets)
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.secrets)
        return True
