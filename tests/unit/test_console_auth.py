"""The console's gate: who may listen where, sessions and form tokens that cannot be
forged, replayed across forms, or carried over to another token."""

from __future__ import annotations

import pytest

from engine.app.console import auth
from engine.core.errors import ConfigError

TOKEN = "s3cret-console-token-0123456789"
NOW = 1_800_000_000


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"]
)
def test_a_loopback_host_needs_no_token(host: str) -> None:
    auth.check_exposure(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "console.example.com"])
def test_a_host_beyond_this_machine_is_refused_without_a_token(host: str) -> None:
    with pytest.raises(ConfigError) as err:
        auth.check_exposure(host, None)
    assert str(err.value) == (
        f"the console would listen on {host}, beyond this machine, without CRONWRIGHT_UI_TOKEN;"
        " set CRONWRIGHT_UI_TOKEN (at least 16 characters; python3 -c 'import secrets;"
        " print(secrets.token_urlsafe(24))' makes one), or keep the default host 127.0.0.1"
    )
    auth.check_exposure(host, TOKEN)  # with one it may


def test_a_short_token_is_refused_wherever_the_console_listens() -> None:
    with pytest.raises(ConfigError) as err:
        auth.check_exposure("127.0.0.1", "hunter2")
    assert str(err.value) == (
        "CRONWRIGHT_UI_TOKEN is 7 characters long; the console wants at least 16;"
        " python3 -c 'import secrets; print(secrets.token_urlsafe(24))' makes one"
    )


def test_a_blank_token_is_no_token() -> None:
    assert auth.token_from({"CRONWRIGHT_UI_TOKEN": "  "}) is None
    assert auth.token_from({}) is None
    assert auth.token_from({"CRONWRIGHT_UI_TOKEN": f" {TOKEN}\n"}) == TOKEN


def test_the_token_check_takes_only_the_token() -> None:
    keys = auth.Keys(TOKEN)
    assert keys.token_matches(TOKEN)
    assert not keys.token_matches(TOKEN[:-1])
    assert not keys.token_matches("")


def test_a_session_cookie_names_its_operator_until_it_expires() -> None:
    keys = auth.Keys(TOKEN)
    cookie = keys.session_cookie("alice", NOW)
    session = keys.session(cookie, NOW + 60)
    assert session is not None
    assert (session.name, session.actor, session.issued) == ("alice", "ui:alice", NOW)
    assert keys.session(cookie, NOW + auth.SESSION_SECONDS) is None  # expired
    assert keys.session(cookie, NOW - 1) is None  # from the future


def test_a_forged_or_foreign_session_cookie_proves_nothing() -> None:
    keys = auth.Keys(TOKEN)
    cookie = keys.session_cookie("alice", NOW)
    payload, mac = cookie.split(".")
    import base64

    forged = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "==").replace(b"alice", b"mallory")
        )
        .decode()
        .rstrip("=")
    )
    for bad in (f"{forged}.{mac}", f"{payload}.{'0' * 64}", "", "garbage", "a.b.c", "%%%.x"):
        assert keys.session(bad, NOW) is None, bad
    other = auth.Keys(TOKEN + "-rotated")
    assert other.session(cookie, NOW) is None  # a new token signs everyone out


def test_a_form_token_is_bound_to_its_session_and_its_address() -> None:
    keys = auth.Keys(TOKEN)
    alice = keys.session(keys.session_cookie("alice", NOW), NOW)
    bob = keys.session(keys.session_cookie("bob", NOW), NOW)
    assert alice is not None and bob is not None
    token = keys.form_token(alice, "/jobs/probe/pause")
    assert keys.form_token_ok(alice, "/jobs/probe/pause", token)
    assert not keys.form_token_ok(alice, "/jobs/probe/resume", token)
    assert not keys.form_token_ok(bob, "/jobs/probe/pause", token)
    assert not keys.form_token_ok(alice, "/jobs/probe/pause", "")


def test_the_sign_in_form_needs_its_own_cookie_and_token() -> None:
    keys = auth.Keys(TOKEN)
    cookie = keys.login_cookie(NOW)
    given = keys.login_token(cookie)
    assert keys.login_ok(cookie, given, NOW + 10)
    assert not keys.login_ok(None, given, NOW)  # a form posted from elsewhere
    assert not keys.login_ok(keys.login_cookie(NOW), given, NOW)  # another form's cookie
    assert not keys.login_ok(cookie, given, NOW + auth.LOGIN_SECONDS)  # stale
    assert not keys.login_ok(cookie.replace(".", "x.", 1), given, NOW)
