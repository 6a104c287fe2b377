"""Properties of the Cloudflare cron dialect over hand-written strategies that cover its
whole grammar: lists, ranges (wrapping too), steps, names in any case, leading zeros,
'*' inside lists, numeric weekdays, L, LW, L-n, L-nW, nW, xL, x#n, tabs between fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.errors import CronError
from engine.schedule.cron import Cron, parse, parse_cloudflare
from engine.schedule.cronfields import DOM, DOW, FIELDS, Field

MINUTE_ = timedelta(minutes=1)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(second=0, microsecond=0, tzinfo=UTC)
)
FAST = settings(max_examples=200, deadline=None)


@st.composite
def value(draw: st.DrawFn, f: Field) -> str:
    v = draw(st.integers(f.lo, f.hi))
    if f.names and draw(st.booleans()):
        name = f.names[v - f.lo]
        return draw(st.sampled_from([name, name.lower(), name.title()]))
    return draw(st.sampled_from(["", "", "", "0"])) + str(v)


@st.composite
def item(draw: st.DrawFn, f: Field, *, first: bool) -> str:
    step = st.integers(1, f.hi - f.lo).map(str)
    kinds = ["one", "range", "range-step", "open-step", "star-step"]
    kind = draw(st.sampled_from(kinds if first else [*kinds, "star", "star-range"]))
    a, b = draw(value(f)), draw(value(f))  # ranges may wrap around
    return {
        "one": a,
        "range": f"{a}-{b}",
        "range-step": f"{a}-{b}/{draw(step)}",
        "open-step": f"{a}/{draw(step)}",
        "star-step": f"*/{draw(step)}",
        "star": "*",
        "star-range": f"*-{b}",
    }[kind]


@st.composite
def plain_field(draw: st.DrawFn, f: Field) -> str:
    rest = draw(st.lists(item(f, first=False), max_size=3))
    return ",".join([draw(item(f, first=True)), *rest])


def field_text(f: Field) -> st.SearchStrategy[str]:
    choices = [st.just("*"), plain_field(f)]
    if f is DOM:
        n = st.integers(1, 30)
        choices += [
            st.sampled_from(["L", "LW"]),
            n.map(lambda k: f"L-{k}"),
            n.map(lambda k: f"L-{k}W"),
            st.integers(1, 31).map(lambda k: f"{k}W"),
        ]
    if f is DOW:
        choices += [
            st.just("L"),
            value(DOW).map(lambda d: f"{d}L"),
            st.tuples(value(DOW), st.integers(1, 5)).map(lambda t: f"{t[0]}#{t[1]}"),
        ]
    return st.one_of(choices)


@st.composite
def expression(draw: st.DrawFn) -> str:
    fields = [draw(field_text(f)) for f in FIELDS]
    blanks = [draw(st.sampled_from([" ", " ", " ", "  ", "\t"])) for _ in range(4)]
    return fields[0] + "".join(b + t for b, t in zip(blanks, fields[1:], strict=True))


def same_times(a: Cron, b: Cron, start: datetime, n: int = 10) -> bool:
    return a.fire_times(start, n) == b.fire_times(start, n)


@FAST
@given(expression())
def test_canonical_form_is_idempotent_and_passes_our_policy(text: str) -> None:
    cron = parse_cloudflare(text)
    again = parse_cloudflare(cron.canonical)
    assert again.canonical == cron.canonical
    assert again == cron
    if cron.fires and not re.fullmatch(r"L-\d+W", cron.canonical.split()[2]):  # policy: no L-nW
        assert parse(cron.canonical, allow_both_day_fields=True).canonical == cron.canonical


@FAST
@given(expression(), TIMES, st.lists(TIMES, min_size=5, max_size=5))
def test_canonical_form_fires_at_the_same_times(
    text: str, start: datetime, probes: list[datetime]
) -> None:
    cron = parse_cloudflare(text)
    canon = parse_cloudflare(cron.canonical)
    assert same_times(cron, canon, start)
    for t in [*probes, *cron.fire_times(start, 5)]:
        assert cron.matches(t) == canon.matches(t)


@FAST
@given(expression(), TIMES)
def test_a_minute_matches_exactly_when_it_is_the_next_fire_time(text: str, t: datetime) -> None:
    cron = parse_cloudflare(text)
    for minute in [t, *cron.fire_times(t, 3)]:
        assert cron.matches(minute) == (cron.next_after(minute - MINUTE_) == minute)


@FAST
@given(expression(), TIMES)
def test_fire_times_are_increasing_and_all_match(text: str, start: datetime) -> None:
    cron = parse_cloudflare(text)
    times = cron.fire_times(start, 10)
    assert times == sorted(set(times))
    assert all(t > start and cron.matches(t) for t in times)
    assert bool(times) == cron.fires


@FAST
@given(expression())
def test_parse_accepts_a_subset_of_cloudflare_with_the_same_meaning(text: str) -> None:
    cron = parse_cloudflare(text)
    try:
        ours = parse(text, allow_both_day_fields=True)
    except CronError:
        return
    assert ours.canonical == cron.canonical


# Characters cron text is made of, plus some that must be rejected cleanly.
ALPHABET = "0123456789 *,-/#LWlw\tSUNMONTHUJAFEBDECsunmon?@\n\u00a0\u0663\u017f"


@FAST
@given(st.one_of(st.text(), st.text(alphabet=ALPHABET, max_size=40)), st.booleans())
def test_parsing_any_text_raises_only_cron_errors(text: str, allow: bool) -> None:
    for parser in (parse_cloudflare, lambda s: parse(s, allow_both_day_fields=allow)):
        try:
            parser(text)
        except CronError as err:
            assert err.message
            assert "; " not in err.message


@FAST
@given(expression(), st.integers(0, 60), st.sampled_from(["", ",", "-", "/", "#", "L", "x"]))
def test_corrupting_a_valid_expression_raises_only_cron_errors(
    text: str, at: int, junk: str
) -> None:
    broken = text[:at] + junk + text[at + 1 :]
    try:
        parse_cloudflare(broken)
    except CronError as err:
        assert err.message
