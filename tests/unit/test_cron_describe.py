"""`cronwright cron` in plain English: every Cloudflare vector gets a sentence, and two
different schedules never share one."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.schedule.cron import Cron, parse, parse_cloudflare
from engine.schedule.describe import describe

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "cloudflare-cron-vectors.json").read_text()
)
EXPRESSIONS = [case["expr"] for case in VECTORS["cases"]]
# Starts spread over 28 years (every calendar), so a long span of each schedule is compared.
STARTS = [datetime(2024 + y, m, 1, tzinfo=UTC) for y in range(0, 28, 3) for m in (1, 2, 6, 11)]


def fire_times(cron: Cron) -> list[datetime]:
    return [t for start in STARTS for t in cron.fire_times(start, 400)]


@pytest.mark.parametrize(
    ("expr", "sentence"),
    [
        ("0 9 L * *", "at 09:00 UTC on the last day of every month"),
        ("30 7 * * MON-FRI", "at 07:30 UTC on Monday through Friday"),
        ("0 * * * *", "every hour at minute 0"),
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("*/7 * * * *", "every hour at every 7th minute from 0"),
        ("0 0,12 1 * *", "at 00:00 and 12:00 UTC on day 1 of every month"),
        ("5 */6 * * *", "at 00:05, 06:05, 12:05 and 18:05 UTC"),
        ("0 */2 * * *", "at minute 0 past every 2nd hour from 0 UTC"),
        ("* 9-17 * * *", "every minute of hours 9 through 17 UTC"),
        ("0 18 * * FRIL", "at 18:00 UTC on the last Friday of the month"),
        ("0 10 * * MON#2", "at 10:00 UTC on the second Monday of the month"),
        ("59 23 LW * *", "at 23:59 UTC on the last weekday of every month"),
        ("0 0 L-3 * *", "at 00:00 UTC on the day 3 days before the last day of every month"),
        ("0 0 15W * *", "at 00:00 UTC on the weekday nearest day 15 of every month"),
        ("0 0 1 JAN,MAR *", "at 00:00 UTC on day 1 of January and March"),
        ("0 0 * */3 *", "at 00:00 UTC in every 3rd month from January"),
        ("0 0 * 12 SUN", "at 00:00 UTC on Sunday in December"),
    ],
)
def test_sentence_reads_as_english(expr: str, sentence: str) -> None:
    assert describe(parse_cloudflare(expr)) == sentence


def test_both_day_fields_read_as_either_day() -> None:
    cron = parse("0 0 15 * MON", allow_both_day_fields=True)
    assert describe(cron) == "at 00:00 UTC on day 15 of every month or on Monday"


def test_every_cloudflare_vector_gets_a_non_empty_sentence() -> None:
    sentences = {expr: describe(parse_cloudflare(expr)) for expr in EXPRESSIONS}
    assert len(sentences) == 200
    assert [expr for expr, s in sentences.items() if not s.strip()] == []


def test_no_two_different_vector_schedules_share_a_sentence() -> None:
    by_sentence: dict[str, list[str]] = defaultdict(list)
    for expr in EXPRESSIONS:
        by_sentence[describe(parse_cloudflare(expr))].append(expr)
    for exprs in by_sentence.values():
        times = {tuple(fire_times(parse_cloudflare(e))) for e in exprs}
        assert len(times) == 1, f"different schedules share a sentence: {exprs}"


def test_spellings_of_one_schedule_share_a_sentence() -> None:
    assert describe(parse_cloudflare("0,30 9 * * mon-fri")) == describe(
        parse_cloudflare("*/30 9 * * MON-FRI")
    )
