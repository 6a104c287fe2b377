"""Credentials never appear in output, logs, repr() or exception text, even at DEBUG
and even when R2 (miniflare, which checks signatures) rejects them."""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime

import pytest

from engine.adapters.s3 import R2CounterStore
from engine.core.errors import StorageError
from tests.fixtures.aio import run
from tests.fixtures.s3 import S3Server

pytestmark = pytest.mark.s3


@pytest.mark.parametrize(
    ("wrong", "answer"),
    [("secret_access_key", "403 SignatureDoesNotMatch"), ("access_key_id", "401 Unauthorized")],
)
def test_rejected_credentials_do_not_leak(
    miniflare_r2: S3Server,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    wrong: str,
    answer: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_value = "WRONG" + getattr(miniflare_r2, wrong)
    settings = miniflare_r2.settings(**{wrong: bad_value})
    store = R2CounterStore(settings, clock=lambda: datetime.now(UTC))

    async def increment() -> int:
        async with store:
            return await store.increment("o1", "a.example", 1)

    with pytest.raises(StorageError) as info:
        run(increment())
    assert str(info.value) == f"R2 GetObject warmup/daily/o1/a.example: HTTP {answer}"
    assert (info.value.transient, info.value.error_class) == (False, "auth")
    assert store.requests_sent == 1  # a permanent error is not retried

    texts = {
        "exception": str(info.value) + repr(info.value),
        "traceback": "".join(traceback.format_exception(info.value)),
        "logs": caplog.text,
        "output": "".join(capsys.readouterr()),
        "repr": repr(store) + repr(settings),
    }
    assert "Sending http request" in caplog.text  # botocore's DEBUG logs were captured
    secrets = [miniflare_r2.access_key_id, miniflare_r2.secret_access_key, bad_value]
    leaks = [(where, s) for where, text in texts.items() for s in secrets if s in text]
    assert leaks == []
