"""The secrets in a notification or healthcheck URL (``${NAME}`` values) reach the
receiver and nothing else: not a log line (cronwright's or Apprise's, at debug level
included), not an error's text."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest

from devtools.manifests import probe_manifest
from devtools.ports import free_port
from engine.adapters.noticesend import NoticeSender
from engine.app import logsecrets
from engine.app.notifier import url_secrets
from engine.core.errors import NoticeError
from engine.core.job import Job, Notify
from engine.runtime.notices import Notice
from tests.fixtures.aio import run
from tests.fixtures.receiver import receiving

HOOK = "hook-s3cret-0123456789"
UUID = "5f1c2a9e-0b7d-4c55-9d0a-7e3f4b2c1a00"
ENV = {"HOOK_TOKEN": HOOK, "HC_UUID": UUID, "SHORT": "ab"}


@pytest.fixture
def scrubbed(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at debug level, scrubbed as a service scrubs them."""
    manifest = replace(
        probe_manifest(
            Job(
                name="a",
                type="a",
                cron="* * * * *",
                sql="sql/a.sql",
                healthcheck="http://127.0.0.1:1/ping/${HC_UUID}",
            )
        ),
        notify=(Notify(url="json://127.0.0.1:1/hook/${HOOK_TOKEN}/${SHORT}"),),
    )
    logsecrets.install(ENV, extra=url_secrets(manifest, ENV))
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        logsecrets.install({})


def notice(target: str, kind: str = "dead_letter") -> Notice:
    return Notice(
        kind=kind,  # type: ignore[arg-type]
        subject="dead letter 1",
        target=target,
        job="a",
        slot=None,
        title="[probe] a: dead letter",
        body="a: dead-lettered",
    )


def test_the_secrets_are_the_values_the_urls_take_from_the_environment() -> None:
    manifest = replace(
        probe_manifest(
            Job(
                name="a",
                type="a",
                cron="* * * * *",
                sql="sql/a.sql",
                healthcheck="https://hc-ping.com/${HC_UUID}",
                notify=(Notify(url="json://x/${SHORT}"),),
            )
        ),
        notify=(Notify(url="json://x/${HOOK_TOKEN}/${UNSET}"),),
    )
    # SHORT ("ab") is too short to be a secret: masking it everywhere would garble logs.
    assert url_secrets(manifest, ENV) == (UUID, HOOK)


def test_a_failing_notification_names_no_secret_in_its_error_or_any_log_line(
    scrubbed: pytest.LogCaptureFixture,
) -> None:
    async def go(url: str) -> NoticeError:
        async with NoticeSender(ENV, timeout=5.0, secrets=(HOOK, UUID)) as sender:
            with pytest.raises(NoticeError) as caught:
                await sender.send(notice(url))
            return caught.value

    with receiving(failures=1) as receiver:
        err = run(go(receiver.url("/hook/${HOOK_TOKEN}")))
        assert receiver.all()[0].path == f"/hook/{HOOK}"  # the receiver got the secret
    # Apprise's own words for it, folded into the error instead of a log line of their own.
    assert str(err) == "Failed to send JSON POST notification: Internal server error., error=500."
    assert not err.permanent
    lines = [r.getMessage() for r in scrubbed.records]
    assert any("JSON POST URL: http://127.0.0.1" in line for line in lines)  # Apprise's debug
    assert not any(HOOK in line or HOOK[:8] in line for line in lines), lines


def test_a_ping_to_a_closed_port_names_no_secret(scrubbed: pytest.LogCaptureFixture) -> None:
    port = free_port()

    async def go() -> NoticeError:
        async with NoticeSender(ENV, timeout=2.0, secrets=(HOOK, UUID)) as sender:
            with pytest.raises(NoticeError) as caught:
                await sender.send(
                    notice(f"http://127.0.0.1:{port}/ping/${{HC_UUID}}", "ping_start")
                )
            return caught.value

    err = run(go())
    assert str(err) == "ConnectError: [Errno 111] Connection refused"
    assert not any(UUID[:8] in r.getMessage() for r in scrubbed.records)


def test_a_url_that_cannot_be_sent_to_is_named_without_its_values() -> None:
    async def go() -> list[tuple[str, str]]:
        async with NoticeSender(ENV, secrets=(HOOK, UUID)) as sender:
            return sender.problems(
                [
                    "json://127.0.0.1/${HOOK_TOKEN}",
                    "slack://${SLACK_A}/${SLACK_B}/C0123",
                    "nosuchservice://${HOOK_TOKEN}",
                ],
                ["https://hc-ping.com/${HC_MISSING}"],
            )

    assert run(go()) == [
        (
            "slack://${SLACK_A}/${SLACK_B}/C0123",
            "environment variable SLACK_A is not set; set SLACK_A: a URL in the manifest"
            " refers to it",
        ),
        (
            "nosuchservice://${HOOK_TOKEN}",
            "Apprise does not know this URL; see its list of services",
        ),
        (
            "https://hc-ping.com/${HC_MISSING}",
            "environment variable HC_MISSING is not set; set HC_MISSING: a URL in the manifest"
            " refers to it",
        ),
    ]


def test_a_notification_to_an_unset_variable_fails_for_good() -> None:
    async def go() -> NoticeError:
        async with NoticeSender({}, secrets=()) as sender:
            with pytest.raises(NoticeError) as caught:
                await sender.send(notice("json://127.0.0.1/${HOOK_TOKEN}"))
            return caught.value

    err = run(go())
    assert err.permanent
    assert str(err) == (
        "environment variable HOOK_TOKEN is not set; set HOOK_TOKEN: a URL in the manifest"
        " refers to it"
    )
