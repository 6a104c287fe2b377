"""Secrets out of output and logs: a server echoing parts of a token, every log record a
CLI process makes (message, arguments, traceback), and which secrets a process knows."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.adapters.cfqueue import QueuesClient, Settings
from engine.app import logsecrets
from engine.core.errors import JobFailed
from engine.core.scrub import ScrubSecrets, scrub
from tests.fixtures.aio import run

TOKEN = "Zq3xT9vLm2Pw8RkY4nHc6BdJ0sFa5GtE"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def test_a_whole_secret_and_each_long_run_of_one_are_masked_short_runs_are_not() -> None:
    text = f"got {TOKEN}, then {TOKEN[:10]}...{TOKEN[-9:]}, then {TOKEN[:7]}"
    assert scrub(text, [TOKEN]) == f"got ***, then ***...***, then {TOKEN[:7]}"


def test_a_secret_shorter_than_8_characters_is_masked_where_it_appears_whole() -> None:
    assert scrub("user pw: hunter2.", ["hunter2"]) == "user pw: ***."


@pytest.fixture
def echoing_api() -> Iterator[str]:
    """An API on 127.0.0.1 that refuses every call with a 403 quoting the token's first
    and last 12 characters, as a real one did."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            body = json.dumps(
                {
                    "success": False,
                    "errors": [
                        {"code": 10000, "message": f"token {token[:12]}...{token[-12:]} refused"}
                    ],
                }
            ).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    finally:
        server.shutdown()
        server.server_close()


def test_a_403_body_echoing_the_tokens_prefix_and_suffix_shows_neither(echoing_api: str) -> None:
    async def call() -> None:
        settings = Settings(account_id=ACCOUNT, token=TOKEN, base_url=echoing_api)
        async with QueuesClient(settings) as client:
            await client.queue_ids(["jobs"])

    with pytest.raises(JobFailed) as caught:
        run(call())
    assert str(caught.value) == (
        "Cloudflare API GET /queues: HTTP 403 (10000: token ***...*** refused); check"
        " CLOUDFLARE_API_TOKEN: it needs Account > Queues > Edit (queues read and write)"
    )


@pytest.fixture
def record_factory() -> Iterator[None]:
    """The process's log record factory, put back after the test."""
    saved = logging.getLogRecordFactory()
    try:
        yield
    finally:
        logging.setLogRecordFactory(saved)


def captured(logger: logging.Logger) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return out


def test_every_record_a_cli_process_logs_is_scrubbed_message_arguments_and_traceback(
    record_factory: None,
) -> None:
    secret = "s3cr3t-Pa55word-42"
    logsecrets.install({"DATABASE_URL": f"postgresql://app:{secret}@db.example:5432/app"})
    logger = logging.getLogger("tests.scrub.any-library")
    out = captured(logger)
    logger.warning("login as app/%s failed", secret[:9] + "!")
    try:
        raise ValueError(f"server said: bad password {secret[4:]}")
    except ValueError:
        logger.exception("connect failed")
    text = out.getvalue()
    assert "Pa55word" not in text and "s3cr3t-P" not in text
    assert text.startswith("WARNING login as app/***! failed\nERROR connect failed\nTraceback")
    assert text.endswith("ValueError: server said: bad password ***\n")


def test_installing_again_replaces_the_secrets_rather_than_stacking_filters(
    record_factory: None,
) -> None:
    logsecrets.install({"CLOUDFLARE_API_TOKEN": "AAAA1111bbbb2222"})
    logsecrets.install({"CLOUDFLARE_API_TOKEN": "CCCC3333dddd4444"})
    factory = logging.getLogRecordFactory()
    assert not isinstance(factory.base, type(factory))  # type: ignore[attr-defined]
    logger = logging.getLogger("tests.scrub.again")
    out = captured(logger)
    logger.warning("AAAA1111bbbb2222 CCCC3333dddd4444")
    assert out.getvalue() == "WARNING AAAA1111bbbb2222 ***\n"
    logsecrets.install({})
    logger.warning("CCCC3333dddd4444")
    assert out.getvalue().splitlines()[-1] == "WARNING CCCC3333dddd4444"


def test_a_process_knows_the_database_password_and_the_secret_variables() -> None:
    env = {
        "DATABASE_URL": "postgresql://app:p%40ss-word@db/app?sslpassword=key-pass-1",
        "PGPASSWORD": "pg-env-password",
        "R2_ACCESS_KEY_ID": "r2-key-id-123",
        "R2_SECRET_ACCESS_KEY": "r2-secret-456",
        "CLOUDFLARE_API_TOKEN": " cf-token-789 ",
        "R2_BUCKET": "not-a-secret",
    }
    assert sorted(logsecrets.known_secrets(env)) == [
        "cf-token-789",
        "key-pass-1",
        "p%40ss-word",
        "p@ss-word",
        "pg-env-password",
        "r2-key-id-123",
        "r2-secret-456",
    ]


def test_a_record_whose_format_does_not_fit_its_arguments_is_still_scrubbed() -> None:
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "%d items", ("tok-abcdefgh",), None
    )
    ScrubSecrets(["tok-abcdefgh"]).filter(record)
    assert record.getMessage() == "%d items ('***',)"
