"""Our rules on top of Cloudflare's cron grammar, so a string cannot mean two things:
no numeric weekdays, no wrapping ranges, no ``L-nW``, both day fields only on request.
(These are cronwright's own; the grammar they sit on is the saffron port in cronparse.py.)
"""

from __future__ import annotations

from engine.core.errors import CronError
from engine.schedule.cronfields import DOW, WEEKDAYS, FieldAst, Item, dow_text, render


def check_policy(asts: tuple[FieldAst, ...], *, allow_both_day_fields: bool) -> None:
    """Raise CronError when parsed fields break a rule of ours (see cron.py)."""
    dom, dow = asts[2], asts[4]
    _check_numeric_weekdays(dow)
    if dom.special == "L-nW":
        raise CronError(
            f"day-of-month '{dom.text}' is ambiguous on Cloudflare: its matcher and its "
            "scheduler disagree when that day is a Saturday",
            hint=f"write L-{dom.number}, LW or explicit days",
        )
    for ast in asts:
        _check_wraps(ast)
    if not dom.star and not dow.star and not allow_both_day_fields:
        raise CronError(
            f"day-of-month '{dom.text}' and day-of-week '{dow.text}' are both restricted, "
            "so Cloudflare fires on days matching EITHER field, not both",
            hint="opt in with allow_both_day_fields: true, or drop one field (make it *)",
        )


def _check_numeric_weekdays(dow: FieldAst) -> None:
    if dow.special:
        if not dow.digit_day:
            return
        suffix = "L" if dow.special == "xL" else f"#{dow.nth}"
        cf = WEEKDAYS[dow.number - 1] + suffix
        classic = WEEKDAYS[dow.number % 7] + suffix
    else:
        if not any(_numeric_item(it) for it in dow.items):
            return
        cf = dow_text(dow)
        days = set().union(*(_classic_weekdays(it) for it in dow.items))
        classic = render(
            DOW, frozenset(d + 1 for d in days), steps=False, names=True, full="SUN-SAT"
        )
    if cf == classic:
        raise CronError(
            f"weekday '{dow.text}' uses numbers, which classic cron counts from 0 = SUN "
            "and Cloudflare from 1 = SUN",
            hint=f"write {cf}",
        )
    raise CronError(
        f"weekday '{dow.text}' is ambiguous: {cf} on Cloudflare, {classic} in classic cron",
        hint=f"write {cf} or {classic}",
    )


def _numeric_item(it: Item) -> bool:
    return (not it.star and not it.start_named) or (it.explicit_end and not it.end_named)


def _classic_weekdays(it: Item) -> set[int]:
    """The weekdays (0 = SUN) classic cron reads: digits 0-7 with 0 and 7 = SUN."""
    a = 0 if it.star else it.start - 1 if it.start_named else it.start
    b = (it.end - 1 if it.end_named else it.end) if it.explicit_end else 6
    if it.kind == "one":
        return {a % 7}
    seq = [*range(a, b + 1)] if a <= b else [*range(a, 7), *range(0, b + 1)]
    return {x % 7 for x in seq[:: it.step or 1]}


def _check_wraps(ast: FieldAst) -> None:
    f = ast.field
    for it in ast.items:
        if not (it.explicit_end and it.start > it.end):
            continue
        names = f.names if it.start_named or it.end_named else ()

        def spell(v: int, names: tuple[str, ...] = names) -> str:
            return names[v - f.lo] if names else str(v)

        def span(a: int, b: int) -> str:
            return spell(a) if a == b else f"{spell(a)}-{spell(b)}"

        if it.kind == "range":
            split = f"{span(it.start, f.hi)},{span(f.lo, it.end)}"
        else:
            seq = [*range(it.start, f.hi + 1), *range(f.lo, it.end + 1)][:: it.step]
            split = render(f, frozenset(seq), steps=f is not DOW, names=bool(names))
        fixed = ",".join(split if other is it else other.text for other in ast.items)
        raise CronError(
            f"{f.name} range '{it.text}' wraps around, which Cloudflare mis-evaluates",
            hint=f"write {fixed}",
        )
