"""``timestamptz`` between asyncpg and Python: always an aware datetime, never infinity.

asyncpg's own codec reads ``infinity`` and ``-infinity`` back as the naive
``datetime.max`` and ``datetime.min`` (a naive value among aware ones: the gauges died
comparing one), writes an aware ``datetime.min`` or ``datetime.max`` as ``-infinity`` or
``infinity``, and raises a bare OverflowError for a year it cannot hold. This codec,
installed on every pooled connection, writes every datetime as the finite instant it is,
and raises a SQLSTATE 22008 error (a DatabaseError once translated) for a value Python
cannot hold, instead of returning a naive one. cronwright's own columns cannot hold such
values (migration 0011); this is the guard for every other query.

Its cost is a Python call per value where asyncpg's C codec had none: about 0.1 us to
read one, 1 ms more for the 10,000 slots of a gauge refresh, and nothing measurable on a
run's binds (bench/timestamptz_codec.py). The queue claim and a job's run read no
timestamptz at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

#: Postgres counts timestamptz in microseconds from this instant.
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INFINITY, _MINUS_INFINITY = 2**63 - 1, -(2**63)


def encode(value: datetime) -> tuple[int]:
    """An aware datetime as its instant; a naive one as local time, as asyncpg does."""
    return ((value.astimezone(UTC) - _PG_EPOCH) // _MICROSECOND,)


def decode(value: tuple[int]) -> datetime:
    """Microseconds from 2000-01-01 UTC as an aware UTC datetime."""
    try:
        return _PG_EPOCH + timedelta(0, 0, value[0])
    except OverflowError:  # infinity and -infinity are the int64 extremes: they land here
        pass
    if value[0] in (_INFINITY, _MINUS_INFINITY):
        shown = "infinity" if value[0] > 0 else "-infinity"
        raise asyncpg.exceptions.DatetimeFieldOverflowError(
            f"timestamptz {shown} has no Python value: cronwright reads finite times only"
        )
    raise asyncpg.exceptions.DatetimeFieldOverflowError(
        "a timestamptz outside the years 1 to 9999 has no Python value:"
        " cronwright reads finite times only"
    )


async def install(conn: Any) -> None:
    """Use this codec for timestamptz on ``conn`` (a pool's ``init``)."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=encode, decoder=decode, format="tuple"
    )
