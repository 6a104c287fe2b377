"""The range picker fuzzed: whatever a query string holds, the grid and its fragment answer
200 or a 400 with a one-line reason, never a 500 or a traceback."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.integration.console_support import Client, console, project

pytestmark = [pytest.mark.postgres, pytest.mark.fuzz]

KEYS = st.sampled_from(["range", "from", "to", "job", "page", "done", "x"])
TIMES = st.one_of(
    st.datetimes().map(lambda t: t.isoformat()),
    st.datetimes().map(lambda t: t.strftime("%Y-%m-%dT%H:%M") + "Z"),
    st.sampled_from(["", "Z", "2026-02-30T00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]),
)
VALUES = st.one_of(
    TIMES,
    st.sampled_from(["1h", "6h", "24h", "7d", "0", "-1", "1e9", "minutely", "nope", "²"]),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8).map(lambda t: f"minutely{t}"),
    st.text(min_size=190, max_size=260),
    st.integers(-10, 10**20).map(str),
)
QUERIES = st.lists(st.tuples(KEYS, VALUES), max_size=6)
#: The longest request line aiohttp reads (its max_line_size): 6 values of 260 characters
#: outside the BMP, percent-encoded, are longer.
MAX_LINE = 8190


@pytest.fixture
def client(tmp_path: Path, pg_dsn: str):  # type: ignore[no-untyped-def]
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        c = runner.run(stack.enter_async_context(console(pg_dsn, project(tmp_path))))
        try:
            yield runner, c
        finally:
            runner.run(stack.aclose())


def test_any_query_of_the_grid_is_a_200_or_a_400_with_its_reason(
    client: tuple[asyncio.Runner, Client],
) -> None:
    runner, c = client

    @given(QUERIES, st.sampled_from(["/", "/grid"]))
    def check(pairs: list[tuple[str, str]], path: str) -> None:
        target = f"{path}?{urlencode(pairs)}"
        status, body = runner.run(c.get(target))
        event(f"{path} {status}")
        assert status in (200, 400), body
        assert "Traceback" not in body
        if len(target) > MAX_LINE - len("GET  HTTP/1.1"):
            # aiohttp refuses an over-long request line before the console sees it
            assert status == 400 and body.startswith(f"Got more than {MAX_LINE} bytes"), body
            return
        if status == 400 and path == "/grid":
            assert body.endswith("\n") and body.count("\n") == 1 and len(body) > 10, body
        if status == 400 and path == "/":
            assert '<p class="error" role="alert">' in body

    check()
