"""Argument types and helpers shared by the command modules."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
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
    """A slot's time, or where a listing of slots starts (``--at``, ``--from``, ``--to``):
    an ISO 8601 time in the sane range of slots (:func:`engine.core.times.slot_out_of_range`),
    the one bound of every such option."""
    t = parse_time(text)
    problem = slot_out_of_range(t, datetime.now(UTC))
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{problem}; {SLOT_RANGE_HINT}")
    return t


def slot_time_as_given(text: str) -> datetime:
    """:func:`slot_time`'s range, the time as given: naive when it has no offset, for a
    command that reads it in a zone (``cron --at``). A naive time is checked as UTC; a
    zone's offset moves it by less than a day, which no computation from it overflows."""
    slot_time(text)
    return parse_time_as_given(text)


#: The most a seconds option takes: a day.
DAY_SECONDS = 86_400
#: The most jobs or slots one process runs at once: Cloudflare's limit on a queue's
#: consumers, which the manifest's ``queue.consumer.max_concurrency`` keeps to too.
MOST_CONSUMERS = 250
#: The most days ``prune --older-than`` takes: the most a manifest's ``retention`` keeps
#: (a hundred years; far more overflows the cutoff's date).
MOST_DAYS = 36_500
#: Postgres's bigint, which ids and row counts are: a larger number is no row's.
BIGINT_MAX = 2**63 - 1


def whole_number(least: int, most: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``least`` to ``most``, ``unit`` naming what it
    counts in the refusal."""
    of, counted = (f" of {unit}", f" {unit}") if unit else ("", "")

    def parse(text: str) -> int:
        digits = text.isascii() and text.isdigit()
        # Too many digits is too large, before int() of a huge string costs or raises.
        n = int(text) if digits and len(text.lstrip("0")) <= len(str(most)) else None
        if not digits or (n is not None and n < least):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number{of} ({least} or more)"
            )
        if n is None or n > most:
            raise argparse.ArgumentTypeError(f"{text!r} is more than the {most}{counted} allowed")
        return n

    return parse


def seconds(least: float, most: float = DAY_SECONDS) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds from ``least`` to ``most`` (never nan
    or inf, which no timer or lease can wait)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= least):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number of seconds ({least:g} or more)"
            )
        if value > most:
            raise argparse.ArgumentTypeError(f"{text!r} is more than the {most:g} seconds allowed")
        return value

    return parse


#: A count or an id: 1 to Postgres's bigint.
positive = whole_number(1, BIGINT_MAX)


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
