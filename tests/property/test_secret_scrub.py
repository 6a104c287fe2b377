"""The one scrub: any run of 8 or more characters of a known secret leaves the text,
wherever it sits and whatever surrounds it; text holding no such run is left as it is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.core.scrub import FRAGMENT, scrub


def fragments(secret: str) -> list[str]:
    """Every run of FRAGMENT characters of ``secret`` (any longer run holds one)."""
    return [secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)]


@st.composite
def texts_holding_a_fragment(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(st.text(min_size=FRAGMENT, max_size=64))
    start = draw(st.integers(0, len(secret) - FRAGMENT))
    end = draw(st.integers(start + FRAGMENT, len(secret)))
    before, after = draw(st.text(max_size=40)), draw(st.text(max_size=40))
    return secret, before + secret[start:end] + after


@given(texts_holding_a_fragment())
def test_no_run_of_8_characters_of_a_secret_survives_the_scrub(case: tuple[str, str]) -> None:
    secret, text = case
    out = scrub(text, [secret])
    assert not [f for f in fragments(secret) if f in out], out


@given(
    texts_holding_a_fragment(),
    st.lists(st.text(min_size=1, max_size=20), max_size=3),
)
def test_other_secrets_long_or_short_do_not_let_a_fragment_through(
    case: tuple[str, str], others: list[str]
) -> None:
    secret, text = case
    out = scrub(text, [*others, secret])
    assert not [f for f in fragments(secret) if f in out], out


@given(st.text(min_size=FRAGMENT, max_size=64), st.text(max_size=200))
def test_text_without_any_fragment_of_the_secret_is_unchanged(secret: str, text: str) -> None:
    if any(f in text for f in fragments(secret)):
        text = ""
    assert scrub(text, [secret]) == text
