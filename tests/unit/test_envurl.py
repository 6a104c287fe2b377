"""``${NAME}`` in a notification or healthcheck URL: read by one rule for validation and
for sending, replaced from the environment only at send time."""

from __future__ import annotations

import pytest

from engine.core import envurl
from engine.core.errors import ConfigError


def test_references_are_replaced_from_the_environment_and_the_rest_is_kept() -> None:
    url = "slack://${A}/${B_2}/C123?x=$y&z=${A}"
    assert envurl.names(url) == ("A", "B_2", "A")
    assert envurl.expand(url, {"A": "tok/a", "B_2": "b"}) == "slack://tok/a/b/C123?x=$y&z=tok/a"


def test_a_url_without_references_is_unchanged() -> None:
    assert envurl.expand("json://localhost:8000/hook", {}) == "json://localhost:8000/hook"
    assert envurl.problem("json://localhost:8000/hook") is None


def test_an_unset_variable_is_named_and_no_value_is_shown() -> None:
    with pytest.raises(ConfigError) as info:
        envurl.expand("https://hc-ping.com/${HC_UUID}", {"OTHER": "secret-value"})
    assert str(info.value) == (
        "environment variable HC_UUID is not set; set HC_UUID: a URL in the manifest refers to it"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost/hook", "'localhost/hook' is not a URL of the form scheme://..."),
        ("json://", "'json://' is not a URL of the form scheme://..."),
        ("json://x/${A", "'${A' is not a reference to an environment variable"),
        ("json://x/${A B}", "'${A B}' is not a reference to an environment variable"),
    ],
)
def test_malformed_urls_are_described(url: str, problem: str) -> None:
    found = envurl.problem(url)
    assert found is not None and found[0] == problem


def test_a_scheme_list_restricts_the_scheme_case_insensitively() -> None:
    assert envurl.problem("HTTPS://hc-ping.com/x", schemes=("https", "http")) is None
    assert envurl.problem("json://x", schemes=("https", "http")) == (
        "scheme 'json' is not https or http",
        "use a URL such as https://host/path",
    )
