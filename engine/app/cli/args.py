"""Argument types and helpers shared by the command modules."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from engine.core.times import SLOT_RANGE_HINT, as_utc, slot_out_of_range

if TYPE_CHECKING:
    from engine.core.model import Manifest

OK, FAILED, BAD_INPUT = 0, 1, 2


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors (a bad option value, a missing argument) are one
    line, ``cronwright render: error: argument --at: ...``, and exit 2: the usage it would
    print first is one ``--help`` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time, in UTC (a time without an offset is UTC)."""
    try:
        return as_utc(parse_time_as_given(text))
    except OverflowError:  # 0001-01-01T00:00+01:00: its UTC instant is before year 1
        raise argparse.ArgumentTypeError(
            f"{text!r} is outside the years 1 to 9999 in UTC"
        ) from None


def parse_time_as_given(text: str) -> datetime:
    """An ISO 8601 time, naive when it has no offset (for a command that reads it in a zone)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (2026-10-31T10:00:00Z)"
        ) from None


def slot_time(text: str) -> datetime:
    """A slot's time (``--at``, ``--from``, ``--to``): an ISO 8601 time in the sane range
    of slots (:func:`engine.core.times.slot_out_of_range`)."""
    t = parse_time(text)
    problem = slot_out_of_range(t, datetime.now(UTC))
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{problem}; {SLOT_RANGE_HINT}")
    return t


def positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def host(text: str) -> str:
    """An address to bind: a host name or IP address, never blank (which would mean
    every interface without saying so)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a blank host binds every interface; write 0.0.0.0")
    return text.strip()


def out_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else Path(args.manifest).parent / "generated"


def load(args: argparse.Namespace) -> Manifest:
    from engine.manifest import load as load_manifest

    return load_manifest(args.manifest)
