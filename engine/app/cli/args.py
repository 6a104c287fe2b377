"""Argument types and helpers shared by the command modules."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.core.times import as_utc

if TYPE_CHECKING:
    from engine.core.model import Manifest

OK, FAILED, BAD_INPUT = 0, 1, 2


def parse_time(text: str) -> datetime:
    """An ISO 8601 time in UTC; without an offset it is read as UTC."""
    return as_utc(parse_time_as_given(text))


def parse_time_as_given(text: str) -> datetime:
    """An ISO 8601 time, naive when it has no offset (for a command that reads it in a zone)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 time (2026-10-31T10:00:00Z)"
        ) from exc


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def out_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else Path(args.manifest).parent / "generated"


def load(args: argparse.Namespace) -> Manifest:
    from engine.manifest import load as load_manifest

    return load_manifest(args.manifest)
