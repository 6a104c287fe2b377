"""Cloudflare's own answers (tests/data/cloudflare-cron-vectors.json, produced by its
parser): 200 expressions with their next 25 fire times and match probes, and strings
Cloudflare rejects. An evaluator that disagrees with any of them is wrong."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import CronError
from engine.schedule.cron import parse, parse_cloudflare

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "cloudflare-cron-vectors.json").read_text()
)
CASES: list[dict[str, Any]] = VECTORS["cases"]
REJECTS: list[str] = VECTORS["cloudflare_rejects"]
# What parse may add on top of parse_cloudflare: one of our policy rules.
POLICY_MESSAGE = re.compile(
    r"weekday '.*' (is ambiguous|uses numbers)"
    r"|.* range '.*' wraps around"
    r"|day-of-month '.*' and day-of-week '.*' are both restricted"
    r"|day-of-month '.*' never occurs in month"
    r"|day-of-month 'L-\d+W' is ambiguous on Cloudflare"
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def by_expr(cases: list[dict[str, Any]]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c["expr"] for c in cases])


def test_vector_file_holds_200_distinct_cases_and_some_rejects() -> None:
    assert len(CASES) == 200
    assert len({c["expr"] for c in CASES}) == 200
    assert all(len(c["next"]) == 25 for c in CASES)
    assert REJECTS


@by_expr(CASES)
def test_next_25_fire_times_equal_cloudflares(case: dict[str, Any]) -> None:
    cron = parse_cloudflare(case["expr"])
    assert cron.fire_times(utc(case["start"]), 25) == [utc(t) for t in case["next"]]


@by_expr(CASES)
def test_every_probe_matches_as_on_cloudflare(case: dict[str, Any]) -> None:
    cron = parse_cloudflare(case["expr"])
    assert [[t, cron.matches(utc(t))] for t, _ in case["probe"]] == case["probe"]


@by_expr(CASES)
def test_policy_accepts_with_the_same_times_or_rejects_by_a_policy_rule(
    case: dict[str, Any],
) -> None:
    expected = [utc(t) for t in case["next"]]
    try:
        cron = parse(case["expr"])
    except CronError as err:
        assert POLICY_MESSAGE.match(err.message), str(err)
        return
    assert cron.fire_times(utc(case["start"]), 25) == expected
    # the canonical form is what we emit; it must fire at the same times too
    assert parse(cron.canonical).fire_times(utc(case["start"]), 25) == expected


@pytest.mark.parametrize("text", REJECTS, ids=[repr(t) for t in REJECTS])
def test_strings_cloudflare_rejects_are_rejected_by_both_parsers(text: str) -> None:
    with pytest.raises(CronError):
        parse_cloudflare(text)
    with pytest.raises(CronError):
        parse(text)
