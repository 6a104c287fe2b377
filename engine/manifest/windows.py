"""A window must end by its slot: one that ends later makes the run read data that does
not exist yet and still record success (the real run is then a duplicate)."""

from __future__ import annotations

# Where a window with offset >= 0 ends: for offset 0, and for offset n > 0 (k = n + 1).
_ENDS = {
    "minute": ("at the next full minute", "{k} minutes after the slot's minute began"),
    "hour": ("at the next full hour", "{k} hours after the slot's hour began"),
    "day": ("at the next midnight", "{k} days after the slot's midnight"),
    "week": ("at the next Monday 00:00", "{k} weeks after the slot's Monday 00:00"),
    "month": ("on the 1st of the next month", "{k} months after the 1st of the slot's month"),
}


def ends_after_slot(period: object, offset: object) -> tuple[str, str] | None:
    """(problem, fix) when ``{period, offset}`` ends after its slot, else None. Windows
    are whole periods, so any offset >= 0 ends after the slot."""
    if not isinstance(period, str) or period not in _ENDS or type(offset) is not int or offset < 0:
        return None
    first, later = _ENDS[str(period)]
    where = first if offset == 0 else later.format(k=offset + 1)
    return (
        f"offset {offset} of period {period} ends {where}",
        f"use offset -1 for the previous {period}, or set allow_open_window: true"
        " if the template never reads window_end",
    )
