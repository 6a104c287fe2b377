"""The web console's routes on a real Postgres, served on a loopback port: the grid gives
`cronwright slots`'s answer in a bounded number of questions, actions are refused without
the token, a session, the form's CSRF token or the same origin, and go through the
operator's functions, recorded with who and when (the CLI's too); bad input is a 4xx
with its reason."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from devtools import consoledata
from devtools.manifests import probe_manifest
from engine.adapters.pg import Database
from engine.app.cli import main
from engine.app.console import ranges, views
from engine.app.wiring import utc_now
from engine.core.times import iso
from engine.runtime import pauses
from engine.runtime.scheduling import grace_for
from tests.integration.console_support import (
    TOKEN,
    Client,
    console,
    fresh_minute,
    project,
    rows,
)
from tests.integration.executor_support import make_job
from tests.integration.test_reconcile import CountingDb

pytestmark = pytest.mark.postgres

MIN = timedelta(minutes=1)
READ_ONLY = (
    "the console is read-only: CRONWRIGHT_UI_TOKEN is not set where it runs, so nothing"
    " can be changed from here (the CLI can)"
)


def run(coro: Any) -> Any:
    from tests.fixtures.aio import run as run_

    return run_(coro)


def seeded(tmp_path: Path, dsn: str) -> tuple[Any, consoledata.Seeded]:
    manifest = project(tmp_path)
    return manifest, run(consoledata.seed(dsn, fresh_minute()))


async def snapshot(db: Database) -> list[Any]:
    """Everything an action could change."""
    return [
        await rows(db, f"SELECT * FROM cronwright.{table} ORDER BY 1, 2")
        for table in ("pauses", "dispatched", "queue", "dead_letters", "runs")
    ]


def test_the_grid_gives_the_answer_cronwright_slots_gives_for_the_same_range(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)
    start, end = iso(seed.start), iso(seed.now)

    async def grid() -> list[tuple[str, str, str]]:
        async with console(pg_dsn, manifest, transport="cloudflare") as c:
            return await c.cells(f"from={start}&to={end}")

    cells = run(grid())
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    argv = ["slots", "--from", start, "--to", end, "--json", "--transport", "cloudflare"]
    assert main(["-m", manifest.path, *argv]) == 0
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(cells) == sorted((s["job"], s["slot"], s["status"]) for s in cli)
    assert len(cells) == len(set(cells)) > 200
    assert {status for _, _, status in cells} == {
        "succeeded", "failed", "dead_lettered", "running", "queued", "pending", "missing",
        "paused", "superseded", "not_deployed",
    }  # fmt: skip


def test_a_grid_page_asks_one_question_whatever_the_number_of_jobs(pg_dsn: str) -> None:
    base = make_job(name="j0", cron="*/5 * * * *")
    now = utc_now()
    # A job with no slot in the last 24 hours: its row still shows its runtime pause.
    yearly = make_job(name="yearly", cron=f"0 0 1 {(now.month + 5) % 12 + 1} *")

    async def questions(n: int) -> tuple[int, set[str]]:
        jobs = [replace(base, name=f"j{i}", type=f"t.j{i}") for i in range(n)]
        ctx = views.Context(
            manifest=probe_manifest(*jobs, yearly),
            transport="postgres",
            grace=grace_for("postgres"),
            templates={},
            environ={},
            clock=utc_now,
        )
        rng = ranges.parse({}, ctx.manifest, now)
        async with Database.open(pg_dsn, max_size=1) as db:
            counting = CountingDb(db)
            view = await views.grid_view(counting, ctx, rng)  # type: ignore[arg-type]
            assert view.cells == n * 288
            return counting.queries, {r.job.name for r in view.rows if r.pause is not None}

    async def pause() -> None:
        async with Database.open(pg_dsn, max_size=1) as db, db.transaction() as tx:
            for job in ("j0", "yearly"):
                await pauses.pause(tx, job, now - timedelta(hours=1), None, by="cli:ops")

    run(pause())
    assert run(questions(1)) == run(questions(30)) == (1, {"j0", "yearly"})


ACTIONS = (
    "/jobs/minutely/pause",
    "/jobs/minutely/resume",
    "/jobs/minutely/slots/{missing}/run",
    "/jobs/minutely/slots/{succeeded}/rerun",
    "/dead-letters/{letter}/replay",
)


def paths(seed: consoledata.Seeded) -> list[str]:
    return [
        p.format(missing=iso(seed.missing), succeeded=iso(seed.succeeded), letter=seed.dead_letter)
        for p in ACTIONS
    ]


def test_without_a_token_every_action_is_a_403_and_changes_nothing(
    tmp_path: Path, pg_dsn: str
) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)

    async def main_() -> None:
        async with console(pg_dsn, manifest) as c:
            before = await snapshot(c.db)
            status, page = await c.get("/jobs/minutely")
            assert status == 200
            assert "The console is read-only" in page
            assert 'method="post" action="/jobs/minutely/pause"' not in page
            for path in [*paths(seed), "/login", "/logout"]:
                code, body, _ = await c.post(path, {"csrf": "x", "reason": "r"})
                assert code == 403, path
                assert READ_ONLY in body, path
            assert await snapshot(c.db) == before

    run(main_())


def test_an_action_needs_a_session_its_form_token_and_the_same_origin(
    tmp_path: Path, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, _ = seeded(tmp_path, pg_dsn)
    caplog.set_level(logging.DEBUG)

    async def main_() -> None:
        async with console(pg_dsn, manifest, token=TOKEN) as c:
            before = await snapshot(c.db)
            code, body, _ = await c.post("/jobs/minutely/pause", {"csrf": "x"})
            assert (code, "sign in first" in body) == (403, True)
            assert await c.sign_in(token="wrong-token-but-long-enough") == 403
            _, html = await c.get("/login")
            assert 'name="token"' in html and TOKEN not in html
            # Signing in: the cookie the browser keeps
            _, html = await c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', html)
            assert csrf is not None
            async with c.http.post(
                "/login",
                data={"token": TOKEN, "name": "alice", "csrf": csrf.group(1)},
                allow_redirects=False,
            ) as r:
                assert (r.status, r.headers["Location"]) == (303, "/")
                cookies = [v for k, v in r.headers.items() if k == "Set-Cookie"]
            [session] = [v for v in cookies if v.startswith("cronwright_session=")]
            assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
            assert TOKEN not in session
            page = "/jobs/minutely"
            action = "/jobs/minutely/pause"
            other = await c.form_token(page, "/logout")
            for data, headers, why in (
                ({}, {}, "the form's CSRF token is missing or stale"),
                ({"csrf": other}, {}, "the form's CSRF token is missing or stale"),
                (
                    {"csrf": await c.form_token(page, action)},
                    {"Origin": "https://evil.example"},
                    "a form from another site (https://evil.example) may not act here",
                ),
            ):
                code, body, _ = await c.post(action, data, headers=headers)
                assert (code, escape(why) in body) == (403, True), (why, body[-400:])
            assert await snapshot(c.db) == before
            code, _, where = await c.post(action, {"csrf": await c.form_token(page, action)})
            assert (code, where) == (303, "/jobs/minutely?done=paused")
            [pause] = await rows(
                c.db, "SELECT paused_by, reason FROM cronwright.pauses WHERE resumed_at IS NULL"
            )
            assert pause == {"paused_by": "ui:alice", "reason": None}
            _status, html = await c.get(where)
            assert "Paused: the job&#39;s slots from now on are skipped" in html

    run(main_())
    assert TOKEN not in caplog.text
    assert "wrong-token-but-long-enough" not in caplog.text
    assert "console: ui:alice paused minutely" in caplog.text


def test_each_action_goes_through_the_operators_code_and_records_who_and_when(
    tmp_path: Path, pg_dsn: str
) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)
    missing, succeeded = iso(seed.missing), iso(seed.succeeded)

    async def act(c: Client, page: str, action: str, **data: str) -> str:
        token = await c.form_token(page, action)
        code, body, where = await c.post(action, {"csrf": token, **data})
        assert code == 303, body
        return where

    async def main_() -> None:
        async with console(pg_dsn, manifest, token=TOKEN) as c:
            assert await c.sign_in("alice") == 303
            t0 = utc_now()
            where = await act(c, "/jobs/minutely", "/jobs/minutely/pause", reason="db upgrade")
            assert where == "/jobs/minutely?done=paused"
            where = await act(c, "/jobs/minutely", "/jobs/minutely/resume")
            assert where == "/jobs/minutely?done=resumed"
            [p] = await rows(
                c.db,
                "SELECT reason, paused_by, resumed_by, paused_from, resumed_at"
                " FROM cronwright.pauses WHERE paused_by IS DISTINCT FROM 'cli:ops'",
            )
            assert (p["reason"], p["paused_by"], p["resumed_by"]) == (
                "db upgrade",
                "ui:alice",
                "ui:alice",
            )
            assert t0 <= p["paused_from"] <= p["resumed_at"] <= utc_now()

            page = f"/jobs/minutely/slots/{missing}"
            where = await act(c, page, f"{page}/run")
            assert where == f"{page}?done=sent"
            page = f"/jobs/minutely/slots/{succeeded}"
            where = await act(c, page, f"{page}/rerun")
            assert where == f"{page}?done=rerun"
            where = await act(c, "/jobs/minutely", f"/dead-letters/{seed.dead_letter}/replay")
            assert where.endswith("?done=replayed")

            sent = await rows(
                c.db,
                "SELECT slot, source, transport, requested_by, rerun_id, dispatched_at"
                " FROM cronwright.dispatched WHERE requested_by IS NOT NULL ORDER BY slot",
            )
            assert [
                (iso(s["slot"]), s["source"], s["transport"], s["requested_by"]) for s in sent
            ] == [
                (iso(seed.dead_lettered), "replay", "postgres", "ui:alice"),
                (missing, "enqueue", "postgres", "ui:alice"),
                (succeeded, "rerun", "postgres", "ui:alice"),
            ]
            assert all(t0 <= s["dispatched_at"] for s in sent)
            rerun = sent[2]["rerun_id"]
            assert rerun.startswith("rerun-") and sent[0]["rerun_id"] is None
            queued = await rows(c.db, "SELECT body FROM cronwright.queue ORDER BY id")
            assert [json.loads(q["body"]) for q in queued] == [
                {"type": "minutely", "scheduledFor": missing},
                {"type": "minutely", "scheduledFor": succeeded, "rerun": rerun},
                {"type": "minutely", "scheduledFor": iso(seed.dead_lettered)},
            ]
            [letter] = await rows(
                c.db, "SELECT replayed_as, replayed_by FROM cronwright.dead_letters"
            )
            assert letter == {"replayed_as": "enqueue:postgres", "replayed_by": "ui:alice"}
            # Sent, not run: the web request ran nothing.
            assert (
                await rows(
                    c.db,
                    "SELECT 1 FROM cronwright.runs WHERE job = 'minutely' AND slot = $1",
                    seed.missing,
                )
                == []
            )
            _status, html = await c.get(f"/jobs/minutely/slots/{succeeded}")
            assert f"asked by ui:alice (rerun request {rerun})" in html

    run(main_())


def test_the_cli_records_its_actor_as_cli_and_the_login_name(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    monkeypatch.setenv("USER", "ops-oncall")
    m = ["-m", manifest.path]
    assert main([*m, "pause", "minutely"]) == 0
    assert main([*m, "resume", "minutely"]) == 0
    succeeded = iso(seed.succeeded)
    assert (
        main([*m, "enqueue", "minutely", "--at", succeeded, "--rerun", "--transport", "postgres"])
        == 0
    )
    out = capsys.readouterr().out
    found = re.search(r"\(rerun request (rerun-[0-9a-f]+)\) on postgres", out)
    assert found is not None, out
    replay = ["dead-letters", "replay", str(seed.dead_letter), "--transport", "postgres"]
    assert main([*m, *replay]) == 0

    async def check() -> None:
        async with Database.open(pg_dsn, max_size=1) as db:
            assert await rows(
                db,
                "SELECT paused_by, resumed_by FROM cronwright.pauses WHERE reason IS NULL",
            ) == [{"paused_by": "cli:ops-oncall", "resumed_by": "cli:ops-oncall"}]
            assert await rows(
                db,
                "SELECT source, requested_by, rerun_id FROM cronwright.dispatched"
                " WHERE requested_by IS NOT NULL ORDER BY slot DESC",
            ) == [
                {"source": "rerun", "requested_by": "cli:ops-oncall", "rerun_id": found.group(1)},
                {"source": "replay", "requested_by": "cli:ops-oncall", "rerun_id": None},
            ]
            assert await rows(db, "SELECT replayed_by FROM cronwright.dead_letters") == [
                {"replayed_by": "cli:ops-oncall"}
            ]

    run(check())


def test_the_grid_fragment_is_a_304_until_a_status_changes(tmp_path: Path, pg_dsn: str) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)
    query = f"from={iso(seed.start)}&to={iso(seed.now)}"

    async def main_() -> None:
        async with console(pg_dsn, manifest, transport="cloudflare") as c:
            async with c.http.get(f"/grid?{query}") as r:
                etag = r.headers["ETag"]
                assert r.status == 200
            async with c.http.get(f"/grid?{query}", headers={"If-None-Match": etag}) as r:
                assert (r.status, await r.text()) == (304, "")
            async with c.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO cronwright.runs (job, slot, status, attempt, started_at)"
                    " VALUES ('minutely', $1, 'succeeded', 1, $1)",
                    seed.flips,
                )
            async with c.http.get(f"/grid?{query}", headers={"If-None-Match": etag}) as r:
                assert r.status == 200 and r.headers["ETag"] != etag
                assert (
                    f'data-job="minutely" data-slot="{iso(seed.flips)}" data-status="succeeded"'
                    in await r.text()
                )

    run(main_())


def test_a_slot_page_shows_its_attempts_its_sql_and_its_dead_letters(
    tmp_path: Path, pg_dsn: str
) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)
    dead, failed = seed.dead_lettered, seed.failed

    async def main_() -> None:
        async with console(pg_dsn, manifest, transport="cloudflare") as c:
            status, html = await c.get(f"/jobs/minutely/slots/{iso(dead)}")
            assert status == 200
            assert '<span class="badge s-dead_lettered">dead_lettered</span>' in html
            assert "42P01: relation &#34;demo.missing&#34; does not exist" in html
            assert f"<td>{seed.dead_letter}</td>" in html
            assert '<pre class="sql">SELECT $1::timestamptz AS slot;</pre>' in html
            assert f"<dt>$1</dt><dd><code>{dead:%Y-%m-%d %H:%M:%S}+00:00</code></dd>" in html
            status, html = await c.get(f"/jobs/minutely/slots/{iso(failed)}")
            attempts = re.findall(
                r'<td><span class="badge s-(\w+)">\w+</span></td><td>(\d)</td>', html
            )
            assert attempts == [("failed", "2"), ("failed", "1")]
            status, html = await c.get(
                f"/jobs/hourly-paris/slots/{iso(seed.now.replace(minute=0) - timedelta(hours=2))}"
            )
            assert status == 200 and "<dt>local time</dt>" in html and "<dt>window</dt>" in html

    run(main_())


def test_a_job_page_shows_its_schedule_trigger_pauses_letters_and_queue(
    tmp_path: Path, pg_dsn: str
) -> None:
    manifest, seed = seeded(tmp_path, pg_dsn)

    async def main_() -> None:
        async with console(pg_dsn, manifest, transport="postgres") as c:
            status, html = await c.get("/jobs/minutely")
            assert status == 200
            assert "<dt>means</dt><dd>every minute</dd>" in html
            assert "<dt>trigger</dt><dd><code>* * * * *</code>" in html
            assert html.count("<li>") == 5  # the next slots
            assert "<td>db upgrade</td><td>cli:ops</td><td>cli:ops</td>" in html
            assert f"<td>{seed.dead_letter}</td>" in html
            assert "postgres queue: 0 ready, 0 delayed (a retry's backoff), 0 running." in html

    run(main_())


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/jobs/nope", 404, "unknown job &#39;nope&#39; (give a job name or its message type)"),
        ("/jobs/minutely/slots/yesterday", 404, "&#39;yesterday&#39; is not an ISO 8601 time"),
        (
            "/jobs/minutely/slots/2026-10-31T10:00:00+02:00",
            404,
            "is not a UTC time (end it with Z)",
        ),
        (
            "/jobs/hourly-paris/slots/2026-10-31T10:30:00Z",
            404,
            "2026-10-31T10:30:00Z is not a slot of hourly-paris (cron &#39;0 * * * *&#39;); the nearest slots are 2026-10-31T10:00:00Z (earlier) and 2026-10-31T11:00:00Z (later)",
        ),
        (
            "/jobs/minutely/slots/2099-01-01T00:00:00Z",
            404,
            "slot 2099-01-01T00:00:00Z of minutely is not due yet",
        ),
        ("/?range=forever", 400, "range: &#39;forever&#39; is not one of 1h, 6h, 24h, 7d"),
        ("/grid?page=99", 400, "page 99: there is 1 page in this range"),
        ("/static/../../etc/passwd", 404, ""),
    ],
)
def test_a_page_that_cannot_be_is_a_4xx_with_its_reason(
    tmp_path: Path, pg_dsn: str, path: str, status: int, reason: str
) -> None:
    manifest = project(tmp_path)

    async def main_() -> tuple[int, str]:
        async with console(pg_dsn, manifest) as c:
            return await c.get(path)

    code, body = run(main_())
    assert code == status
    assert reason.replace("&#39;", "'" if path.startswith("/grid") else "&#39;") in body
    assert "Traceback" not in body


def test_ui_and_serve_refuse_a_host_beyond_this_machine_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = consoledata.write_project(tmp_path)
    monkeypatch.delenv("CRONWRIGHT_UI_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)  # refused before anything opens
    line = (
        "error: the console would listen on 0.0.0.0, beyond this machine, without"
        " CRONWRIGHT_UI_TOKEN; set CRONWRIGHT_UI_TOKEN (at least 16 characters; python3 -c"
        " 'import secrets; print(secrets.token_urlsafe(24))' makes one), or keep the default"
        " host 127.0.0.1\n"
    )
    assert main(["-m", str(manifest), "ui", "--host", "0.0.0.0"]) == 2
    assert capsys.readouterr() == ("", line)
    assert main(["-m", str(manifest), "serve", "--ui-port", "0", "--ui-host", "0.0.0.0"]) == 2
    _out, err = capsys.readouterr()
    assert err == line


def test_a_console_that_cannot_bind_its_port_stops_with_one_line(
    tmp_path: Path, pg_dsn: str
) -> None:
    import socket

    from engine.core.errors import ConfigError

    manifest = project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main_() -> None:
            from engine.app.console.server import open_console

            async with (
                Database.open(pg_dsn, max_size=1) as db,
                open_console(
                    manifest,
                    db,
                    port=port,
                    host="127.0.0.1",
                    transport="postgres",
                    grace=timedelta(0),
                    environ={},
                ),
            ):
                pass

        with pytest.raises(ConfigError) as err:
            run(main_())
    assert str(err.value) == (
        f"cannot serve the console on 127.0.0.1:{port}: error while attempting to bind on"
        f" address ('127.0.0.1', {port}): address already in use; choose another --port"
        " (serve: --ui-port), or a host of this machine"
    )
