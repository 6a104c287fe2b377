"""The README's notifications example is a manifest that validates, and every URL in it is
one Apprise (or a healthcheck ping) can send to once its variables are set."""

from __future__ import annotations

import re
from pathlib import Path

from engine.adapters.noticesend import NoticeSender
from engine.app.notifier import urls
from engine.core.job import Event
from engine.manifest import load
from tests.fixtures.aio import run

REPO = Path(__file__).resolve().parents[2]


def example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Notifications and healthchecks", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_example_validates_and_every_url_can_be_sent_to(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    for name in ("aggregate_hourly", "purge_sessions", "weekly_signups"):
        (tmp_path / "sql" / f"{name}.sql").write_text("SELECT 1;\n")
    (tmp_path / "jobs.yaml").write_text(example())
    manifest = load(tmp_path / "jobs.yaml")
    told = {j.name: [n.url for n in manifest.notify_for(j)] for j in manifest.jobs}
    assert told == {
        "aggregate-hourly": ["json://alerts.internal:8080/cronwright"],
        "purge-sessions": [],
        "weekly-signups": [n.url for n in manifest.notify],
    }
    assert manifest.notify[1].events == {Event.DEAD_LETTER, Event.MISSING}
    env = {name: "x" * 24 for name in re.findall(r"\$\{(\w+)\}", example())}

    async def problems() -> list[tuple[str, str]]:
        async with NoticeSender(env) as sender:
            return sender.problems(*urls(manifest))

    assert run(problems()) == []
