"""The web console in a real browser (Debian's chromium, driven by Playwright): the grid of a
database with every status reads as `cronwright slots --json` says, a cell leads to its
slot, an action is refused without the token and recorded with who and when with it, the
grid refreshes itself, and a phone shows the pages without sideways overflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from devtools import consoledata
from engine.adapters.pg import Database
from engine.app.wiring import utc_now
from engine.core.times import iso
from tests.fixtures.browser import in_thread
from tests.integration.console_support import ROOT, TOKEN, fresh_minute, rows, started

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

MIN = timedelta(minutes=1)
CELLS = "els => els.map(e => [e.dataset.job, e.dataset.slot, e.dataset.status])"
STATUSES = {
    "succeeded", "failed", "dead_lettered", "running", "queued", "pending", "missing",
    "paused", "superseded", "not_deployed",
}  # fmt: skip


def environ(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CRONWRIGHT_UI_TOKEN"}
    return {**env, "DATABASE_URL": dsn, **extra}


@pytest.fixture
def demo(tmp_path: Path, pg_dsn: str) -> tuple[Path, consoledata.Seeded]:
    manifest = consoledata.write_project(tmp_path / "project")
    return manifest, in_thread(consoledata.seed(pg_dsn, fresh_minute()))


@pytest.fixture
def read_only(demo: tuple[Path, consoledata.Seeded], pg_dsn: str) -> Iterator[str]:
    """`cronwright ui` without a token, its slots sent by the Worker (a 600 s grace)."""
    manifest, _ = demo
    args = ["-m", str(manifest), "ui", "--port", "0", "--transport", "cloudflare"]
    with started(args, environ(pg_dsn)) as (_, url, _mode):
        yield url


@pytest.fixture
def with_token(demo: tuple[Path, consoledata.Seeded], pg_dsn: str) -> Iterator[str]:
    """`cronwright ui` with a token, sending on serve's Postgres queue."""
    manifest, _ = demo
    args = ["-m", str(manifest), "ui", "--port", "0", "--transport", "postgres"]
    with started(args, environ(pg_dsn, CRONWRIGHT_UI_TOKEN=TOKEN)) as (_, url, _mode):
        yield url


def query(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        async with Database.open(dsn, max_size=1) as db:
            return await rows(db, sql, *args)

    result: list[dict[str, Any]] = in_thread(main())
    return result


def everything(dsn: str) -> list[Any]:
    return [
        query(dsn, f"SELECT * FROM cronwright.{t} ORDER BY 1, 2")
        for t in ("pauses", "dispatched", "queue", "dead_letters", "runs")
    ]


def test_the_grid_holds_every_status_as_cronwright_slots_gives_it_and_leads_to_a_slot(
    demo: tuple[Path, consoledata.Seeded],
    read_only: str,
    pg_dsn: str,
    chromium: Callable[..., Any],
) -> None:
    manifest, seed = demo
    start, end = iso(seed.start), iso(seed.now)
    page = chromium().new_page()
    page.goto(f"{read_only}?from={start}&to={end}")
    cells = page.eval_on_selector_all("[data-slot]", CELLS)
    cli = subprocess.run(
        [sys.executable, "-m", "engine", "-m", str(manifest), "slots", "--from", start,
         "--to", end, "--json", "--transport", "cloudflare"],
        cwd=ROOT, env=environ(pg_dsn), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    expected = [json.loads(line) for line in cli.stdout.splitlines()]
    assert sorted(map(tuple, cells)) == sorted((s["job"], s["slot"], s["status"]) for s in expected)
    assert {status for _, _, status in cells} == STATUSES
    assert page.locator(".legend .key").count() == len(STATUSES)
    assert page.locator('.row .label[href="/jobs/hourly-paris"] small').inner_text() == (
        "Europe/Paris"
    )

    dead = iso(seed.dead_lettered)
    page.click(f'[data-job="minutely"][data-slot="{dead}"]')
    page.wait_for_url(f"{read_only}jobs/minutely/slots/{dead}")
    assert page.locator("h1").inner_text() == f"minutely · {dead} dead_lettered"
    attempts = page.locator("section:has(h2:text('Attempts')) tbody tr")
    assert attempts.count() == 1
    assert "42P01" in attempts.first.inner_text()
    letters = page.locator("section:has(h2:text('Dead letters')) tbody tr")
    assert letters.first.locator("td").first.inner_text() == str(seed.dead_letter)
    assert page.locator("pre.sql").inner_text() == "SELECT $1::timestamptz AS slot;"


def test_without_the_token_the_console_says_it_is_read_only_and_an_action_is_a_403(
    read_only: str,
    pg_dsn: str,
    chromium: Callable[..., Any],
) -> None:
    before = everything(pg_dsn)
    page = chromium().new_page()
    page.goto(f"{read_only}jobs/minutely")
    assert page.locator(".badge.ro").inner_text() == "read-only"
    assert "The console is read-only" in page.locator("p.readonly").inner_text()
    assert page.locator("form[action='/jobs/minutely/pause']").count() == 0
    response = page.request.post(f"{read_only}jobs/minutely/pause", form={"csrf": "x"})
    assert response.status == 403
    assert "the console is read-only" in response.text()
    assert everything(pg_dsn) == before


def test_with_the_token_an_operator_signs_in_and_acts_recorded_with_who_and_when(
    demo: tuple[Path, consoledata.Seeded],
    with_token: str,
    pg_dsn: str,
    chromium: Callable[..., Any],
) -> None:
    _, seed = demo
    context = chromium()
    page = context.new_page()
    before = everything(pg_dsn)
    refused = page.request.post(f"{with_token}jobs/minutely/pause", form={"csrf": "x"})
    assert refused.status == 403  # not signed in
    assert everything(pg_dsn) == before

    page.goto(f"{with_token}login")
    page.fill("input[name=token]", TOKEN)
    page.fill("input[name=name]", "alice")
    page.click("button:text('Sign in')")
    page.wait_for_load_state()
    assert page.url == with_token, page.content()
    assert page.locator(".who b").inner_text() == "alice"
    [session] = [c for c in context.cookies() if c["name"] == "cronwright_session"]
    assert (session["httpOnly"], session["sameSite"]) == (True, "Strict")
    assert TOKEN not in page.url and TOKEN not in page.content()

    t0 = utc_now()
    page.goto(f"{with_token}jobs/minutely")
    page.fill("input[name=reason]", "db upgrade")
    page.click("button:text('Pause')")
    page.wait_for_url(f"{with_token}jobs/minutely?done=paused")
    assert page.locator("p.note").inner_text().startswith("Paused")
    [pause] = query(
        pg_dsn,
        "SELECT reason, paused_by, paused_from FROM cronwright.pauses WHERE resumed_at IS NULL",
    )
    assert (pause["reason"], pause["paused_by"]) == ("db upgrade", "ui:alice")
    assert t0 <= pause["paused_from"] <= utc_now()

    slot = iso(seed.missing)
    page.goto(f"{with_token}jobs/minutely/slots/{slot}")
    page.click("button:text('Run this slot')")
    page.wait_for_url(f"{with_token}jobs/minutely/slots/{slot}?done=sent")
    assert "asked by ui:alice" in page.locator("dl.facts").inner_text()
    [sent] = query(
        pg_dsn,
        "SELECT source, transport, requested_by FROM cronwright.dispatched WHERE job = 'minutely'"
        " AND slot = $1",
        seed.missing,
    )
    assert sent == {"source": "enqueue", "transport": "postgres", "requested_by": "ui:alice"}
    [message] = query(pg_dsn, "SELECT body FROM cronwright.queue")
    assert json.loads(message["body"]) == {"type": "minutely", "scheduledFor": slot}


def test_the_grid_picks_up_a_new_status_without_a_reload(
    demo: tuple[Path, consoledata.Seeded],
    read_only: str,
    pg_dsn: str,
    chromium: Callable[..., Any],
) -> None:
    _, seed = demo
    page = chromium().new_page()
    page.goto(f"{read_only}?range=6h")
    cell = f'[data-job="minutely"][data-slot="{iso(seed.flips)}"]'
    assert page.get_attribute(cell, "data-status") == "missing"
    page.evaluate("window.__stillTheSamePage = true")
    query(
        pg_dsn,
        "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
        " VALUES ('minutely', $1, 'succeeded', 1, $1)",
        seed.flips,
    )
    expect(page.locator(cell)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    assert page.evaluate("window.__stillTheSamePage") is True
    assert page.locator("#refreshed").inner_text().startswith("updated ")


def test_a_phone_shows_every_page_without_sideways_overflow_and_the_grid_scrolls_itself(
    demo: tuple[Path, consoledata.Seeded],
    read_only: str,
    chromium: Callable[..., Any],
) -> None:
    _, seed = demo
    phone = chromium(
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    page = phone.new_page()
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    for path in (
        "",
        "jobs/hourly-paris",
        f"jobs/minutely/slots/{iso(seed.dead_lettered)}",
        "login",
    ):
        page.goto(f"{read_only}{path}")
        assert page.evaluate(overflow) <= 0, path
    page.goto(read_only)
    scroller = page.locator(".scroller")
    assert scroller.evaluate("s => s.scrollWidth > s.clientWidth")  # the grid scrolls inside
    assert scroller.evaluate("s => s.scrollLeft > 0")  # opened at the newest slots
    for tappable in ("button:text('Show')", ".presets a >> nth=0"):
        box = page.locator(tappable).bounding_box()
        assert box is not None and box["height"] >= 44, tappable
