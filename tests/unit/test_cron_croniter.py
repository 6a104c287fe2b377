"""Cross-check against croniter where the two dialects mean the same thing: no L, W or #,
no wrapping ranges, no '*' inside a list, at most one restricted day field, and weekday
numbers translated (Cloudflare counts 1-7 from SUN, croniter 0-6)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.schedule.cron import parse, parse_cloudflare
from engine.schedule.cronfields import DOM, DOW, HOUR, MINUTE, MONTH, Field

Pair = tuple[str, str]  # (Cloudflare text, croniter text)


@st.composite
def value(draw: st.DrawFn, f: Field, lo: int) -> tuple[int, Pair]:
    v = draw(st.integers(lo, f.hi))
    if f.names and draw(st.booleans()):
        name = draw(st.sampled_from([str.upper, str.lower, str.title]))(f.names[v - f.lo])
        return v, (name, name)
    return v, (str(v), str(v - 1 if f is DOW else v))


@st.composite
def item(draw: st.DrawFn, f: Field) -> Pair:
    a, (a_cf, a_cr) = draw(value(f, f.lo))
    kind = draw(st.sampled_from(["one", "range", "step", "star-step"]))
    if kind == "star-step":
        step = f"*/{draw(st.integers(1, f.hi - f.lo))}"
        return step, step
    if kind == "one" or a == f.hi:
        return a_cf, a_cr
    _, (b_cf, b_cr) = draw(value(f, a + 1))  # croniter misreads 'a-a'
    step = f"/{draw(st.integers(1, f.hi - f.lo))}" if kind == "step" else ""
    return f"{a_cf}-{b_cf}{step}", f"{a_cr}-{b_cr}{step}"


@st.composite
def field_text(draw: st.DrawFn, f: Field) -> Pair:
    if draw(st.booleans()):
        return "*", "*"
    items = draw(st.lists(item(f), min_size=1, max_size=3))
    return ",".join(cf for cf, _ in items), ",".join(cr for _, cr in items)


@st.composite
def shared_expression(draw: st.DrawFn) -> Pair:
    star = ("*", "*")
    which = draw(st.sampled_from(["neither", "dom", "dow"]))
    dom = draw(field_text(DOM)) if which == "dom" else star
    dow = draw(field_text(DOW)) if which == "dow" else star
    fields = [draw(field_text(MINUTE)), draw(field_text(HOUR)), dom, draw(field_text(MONTH)), dow]
    return " ".join(cf for cf, _ in fields), " ".join(cr for _, cr in fields)


@settings(max_examples=200, deadline=None)
@given(
    pair=shared_expression(),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
)
def test_next_20_fire_times_agree_with_croniter(pair: Pair, start: datetime) -> None:
    text, croniter_text = pair
    cron = parse_cloudflare(text)
    # '31 FEB' never fires: our policy rejects it and croniter gives up its own way
    assume(cron.fires)
    if not re.search(r"(?<![/\d])\d", text.split()[4]):  # digits only as step sizes
        assert parse(text) == cron  # without numeric weekdays our policy accepts it as is
    start = start.replace(second=0, microsecond=0, tzinfo=UTC)
    it = croniter(croniter_text, start)
    assert cron.fire_times(start, 20) == [it.get_next(datetime) for _ in range(20)]
