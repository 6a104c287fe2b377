"""A cron expression in plain English: ``30 7 * * MON-FRI`` -> "at 07:30 UTC on Monday
through Friday".

The sentence is built from the canonical form, field by field, and every field's words
spell its values unambiguously, so two different schedules never share a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.schedule.cron import Cron
from engine.schedule.cronfields import WEEKDAYS

__all__ = ["describe"]

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_NTH = ("", "first", "second", "third", "fourth", "fifth")
_MAX_LISTED_TIMES = 4


def describe(cron: Cron, zone: str = "UTC") -> str:
    """One sentence for ``cron`` read on ``zone``'s clock, e.g. "every hour at minute 0"."""
    minute, hour, dom, month, dow = cron.canonical.split(" ")
    parts = [_time(minute, hour, cron.minutes, cron.hours, zone)]
    days = _days(dom, dow, month)
    if days:
        parts.append(days)
    return " ".join(parts)


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _values(text: str, unit: str, spell: Sequence[str] | None = None, lo: int = 0) -> str:
    """A canonical field's values in words: ``1-5,9`` -> "minutes 1 through 5 and 9",
    ``*/15`` -> "every 15th minute from 0"; ``spell`` names the values (months, days)."""

    def word(v: str) -> str:
        return spell[int(v) - lo] if spell else v

    out = []
    for part in text.split(","):
        span, _, step = part.partition("/")
        a, _, b = span.partition("-")
        if span == "*":
            a = str(lo)
        if step:
            end = f" through {word(b)}" if b else ""
            out.append(f"every {_ordinal(int(step))} {unit} from {word(a)}{end}")
        elif b:
            out.append(f"{word(a)} through {word(b)}")
        else:
            out.append(word(a))
    words = _join(out)
    if spell is not None or words.startswith("every"):
        return words
    single = text.isdigit()
    return f"{unit} {words}" if single else f"{unit}s {words}"


def _time(minute: str, hour: str, minutes: Sequence[int], hours: Sequence[int], zone: str) -> str:
    if hour != "*" and minute != "*" and len(minutes) * len(hours) <= _MAX_LISTED_TIMES:
        return f"at {_join([f'{h:02d}:{m:02d}' for h in hours for m in minutes])} {zone}"
    if hour == "*":
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and 60 % int(minute[2:]) == 0:
            return f"every {minute[2:]} minutes"
        return f"every hour at {_values(minute, 'minute')}"
    hours_words = f"{_values(hour, 'hour')} {zone}"
    if minute == "*":
        return f"every minute of {hours_words}"
    return f"at {_values(minute, 'minute')} past {hours_words}"


def _months(month: str) -> str:
    return "every month" if month == "*" else _values(month, "month", _MONTHS, lo=1)


def _dom(dom: str, month: str) -> str:
    of = f"of {_months(month)}"
    if dom == "L":
        return f"the last day {of}"
    if dom == "LW":
        return f"the last weekday {of}"
    if dom.startswith("L-"):
        n = dom[2:].rstrip("W")
        before = f"{n} day{'s' if n != '1' else ''} before the last day"
        if dom.endswith("W"):
            return f"the weekday nearest {before} {of}"
        return f"the day {before} {of}"
    if dom.endswith("W"):
        return f"the weekday nearest day {dom[:-1]} {of}"
    return f"{_values(dom, 'day', lo=1)} {of}"


def _dow(dow: str) -> str:
    if dow.endswith("L"):
        return f"the last {_DAYS[WEEKDAYS.index(dow[:-1])]} of the month"
    if "#" in dow:
        day, _, nth = dow.partition("#")
        return f"the {_NTH[int(nth)]} {_DAYS[WEEKDAYS.index(day)]} of the month"
    for i, name in enumerate(WEEKDAYS):  # names -> indexes, for _values
        dow = dow.replace(name, str(i))
    return _values(dow, "day", _DAYS)


def _days(dom: str, dow: str, month: str) -> str:
    in_months = "" if month == "*" else f" in {_months(month)}"
    if dom == "*" and dow == "*":
        return in_months.strip()
    if dom == "*":
        return f"on {_dow(dow)}{in_months}"
    if dow == "*":
        return f"on {_dom(dom, month)}"
    return f"on {_dom(dom, month)} or on {_dow(dow)}{in_months}"
