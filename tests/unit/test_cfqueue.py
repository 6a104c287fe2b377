"""The Cloudflare Queues REST client against the local stand-in of the API: the
documented request and response shapes, body decoding, bounded retries of transient
errors, and a token that never shows."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from engine.adapters.cfqueue import Pulled, QueuesClient, Settings, decode_body, whole
from engine.core.errors import ConfigError, JobFailed
from tests.fixtures.aio import run
from tests.fixtures.cfqueues_api import ACCOUNT, TOKEN, CfQueuesApi, serve


@pytest.fixture
def api() -> Iterator[CfQueuesApi]:
    with serve(per_page=1) as api:
        api.create_queue("jobs")
        api.create_queue("jobs-dlq")
        yield api


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(api: CfQueuesApi, token: str = TOKEN, **kw: object) -> QueuesClient:
    settings = Settings(account_id=ACCOUNT, token=token, base_url=api.url)
    return QueuesClient(settings, **kw)  # type: ignore[arg-type]


T = TypeVar("T")


def with_open(c: QueuesClient, call: Callable[[QueuesClient], Awaitable[T]]) -> T:
    """``call(c)`` with the client's connection pool open, as its caller must."""

    async def main() -> T:
        async with c:
            return await call(c)

    return run(main())


def test_settings_name_every_missing_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CLOUDFLARE_API_TOKEN": "  "})
    assert str(caught.value) == (
        "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN are not set; the Queues API needs"
        " an API token with Queues Edit and its account id; without Cloudflare, use the"
        " Postgres queue (--transport postgres, or transport: postgres in the manifest)"
    )


def test_settings_read_the_base_url_override_and_hide_the_token() -> None:
    env = {
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:9/client/v4/",
    }
    settings = Settings.from_env(env)
    assert settings.base_url == "http://127.0.0.1:9/client/v4"
    assert Settings.from_env({**env, "CLOUDFLARE_API_BASE_URL": ""}).base_url == (
        "https://api.cloudflare.com/client/v4"
    )
    assert TOKEN not in repr(settings)
    assert TOKEN not in repr(QueuesClient(settings))


def test_json_and_bytes_bodies_are_base64_and_text_is_plain() -> None:
    doc = b'{"type":"t"}'
    encoded = base64.b64encode(doc).decode()
    assert decode_body(encoded, {"CF-Content-Type": "json"}) == doc
    assert decode_body(encoded, {"CF-Content-Type": "bytes"}) == doc
    assert decode_body(encoded, None) == doc  # json is the default content type
    assert decode_body('{"type":"t"}', {"CF-Content-Type": "text"}) == '{"type":"t"}'
    # A plain JSON object is never valid base64 ('{' is outside the alphabet).
    assert decode_body('{"type":"t"}', {"CF-Content-Type": "json"}) == '{"type":"t"}'
    assert decode_body({"type": "t"}, {}) == {"type": "t"}


def test_queue_ids_are_resolved_by_name_across_pages(api: CfQueuesApi) -> None:
    ids = with_open(client(api), lambda c: c.queue_ids(["jobs", "jobs-dlq"]))
    assert ids == {"jobs": api.queue("jobs").id, "jobs-dlq": api.queue("jobs-dlq").id}
    assert [r.query for r in api.calls("/queues")] == [
        {"page": ["1"], "name": ["jobs", "jobs-dlq"]},
        {"page": ["2"], "name": ["jobs", "jobs-dlq"]},
    ]


def test_a_missing_queue_names_the_fix(api: CfQueuesApi) -> None:
    with pytest.raises(ConfigError) as caught:
        with_open(client(api), lambda c: c.queue_ids(["jobs", "nope", "gone"]))
    assert str(caught.value) == (
        f"queue gone, nope not found in account {ACCOUNT};"
        " run generated/preflight.sh (wrangler queues create ...)"
    )


def test_pull_sends_the_documented_body_and_decodes_messages(api: CfQueuesApi) -> None:
    api.send("jobs", {"type": "a"})
    api.send("jobs", "plain", content_type="text")
    qid = api.queue("jobs").id
    pulled = with_open(
        client(api), lambda c: c.pull(qid, batch_size=10, visibility_timeout_ms=60_000)
    )
    assert api.calls("/messages/pull")[0].json == {
        "batch_size": 10,
        "visibility_timeout_ms": 60_000,
    }
    assert [(p.body, p.attempts) for p in pulled] == [(b'{"type": "a"}', 1), ("plain", 1)]
    assert all(isinstance(p, Pulled) and p.lease_id.startswith("lease-") for p in pulled)


def test_ack_and_retries_go_in_one_call_and_retries_come_back_later(api: CfQueuesApi) -> None:
    for n in range(3):
        api.send("jobs", {"n": n})
    qid = api.queue("jobs").id

    async def main(c: QueuesClient) -> None:
        a, b, lapsed = await c.pull(qid, batch_size=3, visibility_timeout_ms=30_000)
        result = await c.ack(qid, acks=[a.lease_id, "lease-unknown"], retries=[(b.lease_id, 90)])
        assert (result.ack_count, result.retry_count) == (1, 1)
        assert result.warnings == {
            "lease-unknown": "lease not found or message already acknowledged"
        }
        assert api.calls("/messages/ack")[0].json == {
            "acks": [{"lease_id": a.lease_id}, {"lease_id": "lease-unknown"}],
            "retries": [{"lease_id": b.lease_id, "delay_seconds": 90}],
        }
        assert await c.pull(qid, batch_size=3, visibility_timeout_ms=30_000) == []
        api.advance(31)  # the unacked lease lapses; the retry is still delayed
        again = await c.pull(qid, batch_size=3, visibility_timeout_ms=30_000)
        assert [(p.id, p.attempts) for p in again] == [(lapsed.id, 2)]
        api.advance(60)  # the retry is due, and the second lease has lapsed too
        again = await c.pull(qid, batch_size=3, visibility_timeout_ms=30_000)
        assert [(p.id, p.attempts) for p in again] == [(b.id, 2), (lapsed.id, 3)]

    with_open(client(api), main)


def test_send_posts_a_json_message(api: CfQueuesApi) -> None:
    qid = api.queue("jobs-dlq").id
    with_open(client(api), lambda c: c.send(qid, {"type": "x", "deadLetter": {"reason": "r"}}))
    assert api.calls("/messages")[0].json == {
        "body": {"type": "x", "deadLetter": {"reason": "r"}},
        "content_type": "json",
    }
    assert api.queue("jobs-dlq").messages[0].body == {"type": "x", "deadLetter": {"reason": "r"}}


def test_server_errors_and_rate_limits_are_retried_with_backoff(api: CfQueuesApi) -> None:
    api.fail_next("/messages/pull", 503)
    api.fail_next("/messages/pull", 429, {"Retry-After": "3"})
    sleeps = Sleeps()
    qid = api.queue("jobs").id
    assert (
        with_open(
            client(api, sleep=sleeps),
            lambda c: c.pull(qid, batch_size=1, visibility_timeout_ms=1000),
        )
        == []
    )
    assert len(api.calls("/messages/pull")) == 3
    assert sleeps == [0.5, 3.0]


def test_a_lasting_outage_fails_transient_after_the_bounded_attempts(api: CfQueuesApi) -> None:
    for _ in range(3):
        api.fail_next("/messages/ack", 502)
    qid = api.queue("jobs").id
    with pytest.raises(JobFailed) as caught:
        with_open(client(api, sleep=Sleeps()), lambda c: c.ack(qid, acks=["l"], retries=[]))
    assert str(caught.value) == (
        f"Cloudflare API POST /queues/{qid}/messages/ack: HTTP 502 (10001: injected failure)"
    )
    assert (caught.value.transient, caught.value.error_class) == (True, "cloudflare_unavailable")
    assert len(api.calls("/messages/ack")) == 3


def test_a_refused_token_fails_at_once_without_showing_it(api: CfQueuesApi) -> None:
    wrong = "wrong-" + TOKEN
    with pytest.raises(JobFailed) as caught:
        with_open(client(api, token=wrong, sleep=Sleeps()), lambda c: c.queue_ids(["jobs"]))
    assert str(caught.value) == (
        "Cloudflare API GET /queues: HTTP 403 (10000: Authentication error); check"
        " CLOUDFLARE_API_TOKEN: it needs Account > Queues > Edit (queues read and write)"
    )
    assert (caught.value.transient, caught.value.error_class) == (False, "cloudflare_auth")
    assert len(api.requests) == 1
    assert api.requests[0].authorization == f"Bearer {wrong}"


def test_a_refused_connection_is_transient_and_retried() -> None:
    with serve() as api:
        url = api.url  # the server stops at the end of the block: nothing listens
    sleeps = Sleeps()
    c = QueuesClient(Settings(account_id=ACCOUNT, token=TOKEN, base_url=url), sleep=sleeps)
    with pytest.raises(JobFailed) as caught:
        with_open(c, lambda c: c.pull("q", batch_size=1, visibility_timeout_ms=1000))
    assert str(caught.value) == (
        "Cloudflare API POST /queues/q/messages/pull: connection failed"
        " ([Errno 111] Connection refused)"
    )
    assert caught.value.error_class == "cloudflare_connection"
    assert sleeps == [0.5, 1.0]


def test_a_silent_server_times_out_with_the_limit_in_the_message(api: CfQueuesApi) -> None:
    api.hold_acks()
    qid = api.queue("jobs").id
    with pytest.raises(JobFailed) as caught:
        with_open(
            client(api, timeout=0.3, attempts=1), lambda c: c.ack(qid, acks=["l"], retries=[])
        )
    assert (
        str(caught.value) == f"Cloudflare API POST /queues/{qid}/messages/ack: timed out after 0.3s"
    )
    assert caught.value.transient
    assert json.dumps(api.held[0].json) == '{"acks": [{"lease_id": "l"}], "retries": []}'


def test_send_batch_posts_the_workers_bodies_in_calls_of_at_most_100(api: CfQueuesApi) -> None:
    qid = api.queue("jobs").id
    bodies = [{"type": "t", "scheduledFor": f"2026-10-31T10:{n % 60:02d}:00Z"} for n in range(150)]
    with_open(client(api), lambda c: c.send_batch(qid, bodies))
    calls = api.calls("/messages/batch")
    assert [len(r.json["messages"]) for r in calls] == [100, 50]
    assert calls[0].json["messages"][0] == {"body": bodies[0], "content_type": "json"}
    assert [m.body for m in api.queue("jobs").messages] == bodies


def test_pull_and_push_answer_with_the_queues_metrics(api: CfQueuesApi) -> None:
    api.send("jobs", {"type": "a"})
    with_open(client(api), lambda c: c.send(api.queue("jobs").id, {"type": "b"}))
    assert api.queue("jobs").messages[0].timestamp_ms == 1_790_000_000_000
    status, _, pushed = api.handle(
        "POST",
        f"/client/v4/accounts/{ACCOUNT}/queues/{api.queue('jobs').id}/messages/batch",
        {"Authorization": f"Bearer {TOKEN}"},
        json.dumps({"messages": [{"body": {"type": "c"}, "content_type": "json"}]}).encode(),
    )
    assert status == 200
    assert set(pushed["result"]["metadata"]["metrics"]) == {
        "backlog_count",
        "backlog_bytes",
        "oldest_message_timestamp_ms",
    }
    assert pushed["result"]["metadata"]["metrics"]["backlog_count"] == 3


def test_an_unknown_queue_id_is_a_permanent_error_with_the_documented_code(
    api: CfQueuesApi,
) -> None:
    missing = "f" * 32
    with pytest.raises(JobFailed) as caught:
        with_open(client(api, sleep=Sleeps()), lambda c: c.send_batch(missing, [{"type": "t"}]))
    assert str(caught.value) == (
        f"Cloudflare API POST /queues/{missing}/messages/batch: HTTP 404 (10104: Queue does not"
        " exist); run generated/preflight.sh, and check the queue's name in jobs.yaml"
    )
    assert (caught.value.transient, len(api.requests)) == (False, 1)


def test_a_malformed_queue_id_is_refused_with_code_10107(api: CfQueuesApi) -> None:
    with pytest.raises(JobFailed) as caught:
        with_open(client(api, sleep=Sleeps()), lambda c: c.send("not-an-id", {"type": "t"}))
    assert str(caught.value) == (
        "Cloudflare API POST /queues/not-an-id/messages: HTTP 400 (10107: Malformed queue_id);"
        " run generated/preflight.sh, and check the queue's name in jobs.yaml"
    )


def test_a_malformed_token_is_reported_as_an_authentication_problem(api: CfQueuesApi) -> None:
    malformed = "tok en/" + TOKEN
    with pytest.raises(JobFailed) as caught:
        with_open(client(api, token=malformed, sleep=Sleeps()), lambda c: c.queue_ids(["jobs"]))
    assert str(caught.value) == (
        "Cloudflare API GET /queues: HTTP 400 (6003: Invalid request headers); check"
        " CLOUDFLARE_API_TOKEN: it needs Account > Queues > Edit (queues read and write)"
    )
    assert (caught.value.transient, caught.value.error_class) == (False, "cloudflare_auth")
    assert TOKEN not in str(caught.value)


def test_retry_after_is_honoured_on_a_503_and_capped(api: CfQueuesApi) -> None:
    api.fail_next("/messages/ack", 503, {"Retry-After": "7"})
    api.fail_next("/messages/ack", 429, {"Retry-After": "86400"})
    sleeps = Sleeps()
    qid = api.queue("jobs").id
    with_open(client(api, sleep=sleeps), lambda c: c.ack(qid, acks=[], retries=[]))
    assert sleeps == [7.0, 60.0]


@pytest.mark.parametrize(
    "url",
    [
        "http://api.cloudflare.com/client/v4",
        "http://10.0.0.8:8787/client/v4",
        "http://localhost.example.com/client/v4",
    ],
)
def test_an_http_api_url_off_loopback_is_refused_because_the_token_would_travel_in_clear(
    url: str,
) -> None:
    env = {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**env, "CLOUDFLARE_API_BASE_URL": url})
    host = url.split("/")[2].split(":")[0]
    assert str(caught.value) == (
        f"CLOUDFLARE_API_BASE_URL http://{host}/client/v4 uses http://, which would send the"
        " API token in clear; use https:// (http:// is accepted only for a loopback host:"
        " localhost, 127.0.0.1, ::1)"
    )
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/client/v4", "http://[::1]:9/x", "http://localhost:9/x"]
)
def test_an_http_api_url_on_loopback_is_accepted(url: str) -> None:
    assert Settings(account_id=ACCOUNT, token=TOKEN, base_url=url).base_url == url


def test_a_client_used_without_opening_it_says_how() -> None:
    c = QueuesClient(Settings(account_id=ACCOUNT, token=TOKEN))
    with pytest.raises(ConfigError) as caught:
        run(c.send("q", {}))
    assert str(caught.value) == "QueuesClient is not open; use it as `async with client:`"


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        (3, 3),
        (2.0, 2),
        (10**30, 10**30),
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
        (True, None),
        ("7", None),
        (None, None),
    ],
)
def test_a_count_from_the_api_is_read_only_when_it_is_a_finite_number(
    sent: object, read: int | None
) -> None:
    assert whole(sent) == read
