"""Our policy on top of Cloudflare's grammar, the messages every rejection carries, and
the canonical form we emit. Error tests assert the whole message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.core.errors import CronError
from engine.schedule.cron import Cron, parse, parse_cloudflare


def error(text: str, **kw: bool) -> CronError:
    with pytest.raises(CronError) as info:
        parse(text, **kw)
    return info.value


# --- one test per policy rule ----------------------------------------------------------


def test_numeric_weekday_range_is_rejected_spelling_out_both_readings() -> None:
    err = error("10 7 * * 1-5")
    assert str(err) == (
        "weekday '1-5' is ambiguous: SUN-THU on Cloudflare, MON-FRI in classic cron; "
        "write SUN-THU or MON-FRI"
    )
    assert (
        err.message == "weekday '1-5' is ambiguous: SUN-THU on Cloudflare, MON-FRI in classic cron"
    )
    assert err.hint == "write SUN-THU or MON-FRI"


def test_numeric_weekday_before_hash_is_rejected_but_the_occurrence_number_is_fine() -> None:
    assert str(error("0 10 * * 2#2")) == (
        "weekday '2#2' is ambiguous: MON#2 on Cloudflare, TUE#2 in classic cron; "
        "write MON#2 or TUE#2"
    )
    assert parse("0 10 * * MON#2").canonical == "0 10 * * MON#2"


def test_numeric_weekday_whose_readings_agree_is_still_rejected() -> None:
    assert str(error("0 9 * * 1-7")) == (
        "weekday '1-7' uses numbers, which classic cron counts from 0 = SUN and Cloudflare "
        "from 1 = SUN; write SUN-SAT"
    )


def test_step_sizes_in_the_weekday_field_are_not_weekday_numbers() -> None:
    assert parse("0 9 * * */2").canonical == "0 9 * * SUN,TUE,THU,SAT"


def test_wrapping_hour_range_is_rejected_with_the_split_list() -> None:
    assert str(error("0 22-2 * * *")) == (
        "hour range '22-2' wraps around, which Cloudflare mis-evaluates; write 22-23,0-2"
    )


def test_wrapping_weekday_range_is_rejected_with_the_split_list() -> None:
    assert str(error("0 8 * * MON,FRI-MON")) == (
        "day-of-week range 'FRI-MON' wraps around, which Cloudflare mis-evaluates; "
        "write MON,FRI-SAT,SUN-MON"
    )


def test_wrapping_stepped_range_is_rejected_with_the_values_it_was_meant_to_have() -> None:
    assert str(error("50-10/5 * * * *")) == (
        "minute range '50-10/5' wraps around, which Cloudflare mis-evaluates; write 0-10/5,50,55"
    )


def test_wrapping_range_would_also_fire_on_the_value_before_its_start_on_cloudflare() -> None:
    cron = parse_cloudflare("0 22-2 * * *")
    assert cron.canonical == "0 0-2,21-23 * * *"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "0 0 31 2 *",
            "day-of-month '31' never occurs in month '2', so the cron never fires; "
            "pick a day those months have (at most 29), or L for the last day",
        ),
        (
            "0 0 30 FEB *",
            "day-of-month '30' never occurs in month 'FEB', so the cron never fires; "
            "pick a day those months have (at most 29), or L for the last day",
        ),
    ],
)
def test_expression_that_never_fires_is_rejected(text: str, message: str) -> None:
    assert str(error(text)) == message
    assert parse_cloudflare(text).next_after(datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_february_29th_fires_in_leap_years_so_it_is_accepted() -> None:
    cron = parse("0 0 29 FEB *")
    assert cron.next_after(datetime(2025, 1, 1)) == datetime(2028, 2, 29, tzinfo=UTC)


def test_lower_case_l_on_a_weekday_is_rejected_with_the_upper_case_fix() -> None:
    assert str(error("0 18 * * fril")) == (
        "day-of-week 'fril': Cloudflare accepts L only in upper case (names in any case); "
        "write FRIL"
    )
    assert str(error("0 18 * * l")) == (
        "day-of-week 'l': Cloudflare accepts L only in upper case (names in any case); write L"
    )


def test_lower_case_l_and_w_on_a_day_of_month_are_rejected_with_the_upper_case_fix() -> None:
    assert str(error("0 0 lw * *")) == (
        "day-of-month 'lw': Cloudflare accepts L and W only in upper case (names in any case); "
        "write LW"
    )
    assert str(error("0 0 15w * *")) == (
        "day-of-month '15w': Cloudflare accepts W only in upper case (names in any case); write 15W"
    )


@pytest.mark.parametrize(
    ("expr", "canonical"),
    [
        ("0 7 * * mon-fri", "0 7 * * MON-FRI"),
        ("0 7 * * Mon-Fri", "0 7 * * MON-FRI"),
        ("0 7 * * fri#2", "0 7 * * FRI#2"),
        ("0 7 * * friL", "0 7 * * FRIL"),
        ("0 7 * * sAt", "0 7 * * SAT"),
        ("0 7 1 jan,Mar *", "0 7 1 1,3 *"),
        ("0 7 1 dec-DEC *", "0 7 1 12 *"),
    ],
)
def test_names_are_accepted_in_any_case_and_canonicalised_to_upper_case(
    expr: str, canonical: str
) -> None:
    """saffron reads month and weekday names case-insensitively, L and W only in upper case."""
    assert parse(expr).canonical == canonical


def test_restricting_both_day_fields_is_rejected_explaining_the_or_rule() -> None:
    assert str(error("0 0 15 * MON")) == (
        "day-of-month '15' and day-of-week 'MON' are both restricted, so Cloudflare fires on "
        "days matching EITHER field, not both; opt in with allow_both_day_fields: true, "
        "or drop one field (make it *)"
    )


def test_a_step_counts_as_a_restriction_for_the_or_rule() -> None:
    assert error("0 0 */2 * MON").message.startswith("day-of-month '*/2' and day-of-week 'MON'")


def test_both_day_fields_when_allowed_fire_when_either_matches() -> None:
    cron = parse("0 0 15 * MON", allow_both_day_fields=True)
    start = datetime(2024, 4, 10, tzinfo=UTC)  # a Wednesday
    assert [t.day for t in cron.fire_times(start, 3)] == [15, 22, 29]  # Mon 15th, Mon, Mon
    assert cron.matches(datetime(2024, 5, 15))  # a Wednesday, but the 15th


def test_last_weekday_with_an_offset_is_rejected_as_ambiguous() -> None:
    assert str(error("0 0 L-3W * *")) == (
        "day-of-month 'L-3W' is ambiguous on Cloudflare: its matcher and its scheduler "
        "disagree when that day is a Saturday; write L-3, LW or explicit days"
    )


# --- Cloudflare's own rejections name the field and the bad value ----------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "minute '61' is out of range 0-59"),
        ("0 24 * * *", "hour '24' is out of range 0-23"),
        ("0 0 0 * *", "day-of-month '0' is out of range 1-31"),
        ("0 0 1-32 * *", "day-of-month '32' is out of range 1-31"),
        ("0 0 * 13 *", "month '13' is out of range 1-12"),
        (
            "0 0 * * 0",
            "day-of-week '0' is out of range 1-7; Cloudflare numbers weekdays 1-7 from SUN; "
            "write SUN-SAT",
        ),
        ("*/0 * * * *", "minute step '0' in '*/0' is out of range 1-59"),
        ("*/60 * * * *", "minute step '60' in '*/60' is out of range 1-59"),
        ("0 0 * * MON#6", "day-of-week occurrence '6' in 'MON#6' is out of range 1-5"),
        ("0 0 L-31 * *", "day-of-month offset '31' in 'L-31' is out of range 1-30"),
        ("0 H * * *", "hour 'H' is not a number; use 0-23"),
        ("0 0 * JANUARY *", "month 'JANUARY' is not a month name; use three-letter names JAN-DEC"),
        ("0 0 ? * MON", "day-of-month '?' is not supported by Cloudflare; use *"),
        (
            "0 0 L,15 * *",
            "day-of-month 'L,15' combines an L, W or # item with other items, which Cloudflare "
            "rejects; an L, W or # item must be the whole field (use another cron trigger)",
        ),
        (
            "0 0 * * MON#2,FRI",
            "day-of-week 'MON#2,FRI' combines an L, W or # item with other items, which "
            "Cloudflare rejects; an L, W or # item must be the whole field (use another cron "
            "trigger)",
        ),
        (
            "*,5 * * * *",
            "minute '*,5' is not valid; use numbers 0-59 in values, ranges a-b, steps */n or "
            "a-b/n, and comma lists of them",
        ),
        (
            "* * * *",
            "cron expression has 4 fields, expected 5; "
            "write minute hour day-of-month month day-of-week",
        ),
        (
            "0 0 * * * *",
            "cron expression has 6 fields, expected 5; Cloudflare has no seconds or year field",
        ),
        (
            "@daily",
            "macro '@daily' is not supported by Cloudflare; write 5 fields, e.g. '0 0 * * *'",
        ),
        (" 0 * * * *", "cron expression has leading or trailing blanks; remove them"),
        ("0 * * * * ", "cron expression has leading or trailing blanks; remove them"),
    ],
)
def test_cloudflare_rejection_names_the_field_and_the_bad_value(text: str, message: str) -> None:
    for parser in (parse, parse_cloudflare):
        with pytest.raises(CronError) as info:
            parser(text)
        assert str(info.value) == message


# --- the canonical form ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0 * * * *",
        "0 2 * * *",
        "0 3 1 * *",
        "*/15 * * * *",
        "0 17 * * SUN",
        "10 7 * * MON-FRI",
        "0 18 * * FRIL",
        "0 10 * * MON#2",
        "59 23 LW * *",
        "0 9 L * *",
        "0 9 15W * *",
    ],
)
def test_simple_expressions_are_their_own_canonical_form(text: str) -> None:
    assert parse(text).canonical == text


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("0,30 * * * *", "*/30 * * * *"),
        ("0 0 * * mon-fri", "0 0 * * MON,TUE-THU,FRI"),
        ("0 0 * JAN-MAR *", "0 0 * 1,2,3 *"),
        ("0 0 * * SUN-SAT", "0 0 * * *"),
        ("0 0 */1 * *", "0\t0  * * *"),
        ("0 0 * * L", "0 0 * * SAT"),
        ("0 12-23/4,0-11/4 * * *", "0 */4 * * *"),
        ("05 7 * * *", "5 7 * * *"),
    ],
)
def test_semantic_duplicates_share_one_canonical_form_and_are_equal(a: str, b: str) -> None:
    ca, cb = parse(a), parse(b)
    assert ca.canonical == cb.canonical
    assert ca == cb
    assert hash(ca) == hash(cb)
    assert len({ca, cb}) == 1


def test_canonical_form_uses_numbered_months_named_weekdays_and_arithmetic_runs() -> None:
    cron = parse("13-50/5,58 1,2,3 * JUN,MAR *")
    assert cron.canonical == "13-48/5,58 1-3 * 3,6 *"


def test_a_day_field_that_covers_every_day_makes_both_day_fields_unrestricted() -> None:
    cron = parse("0 0 1-31 * MON", allow_both_day_fields=True)
    assert cron.canonical == "0 0 * * *"
    assert parse(cron.canonical).fire_times(datetime(2024, 1, 1), 3) == cron.fire_times(
        datetime(2024, 1, 1), 3
    )


def test_cron_keeps_its_text_and_is_frozen() -> None:
    cron = parse("0,30 * * * *")
    assert cron.text == "0,30 * * * *"
    with pytest.raises(AttributeError):
        cron.text = "x"  # type: ignore[misc]
    assert cron != "*/30 * * * *"
    assert isinstance(cron, Cron)


# --- evaluation ------------------------------------------------------------------------


def test_matches_ignores_seconds_and_takes_naive_times_as_utc() -> None:
    cron = parse("30 9 * * *")
    assert cron.matches(datetime(2024, 5, 1, 9, 30, 59))
    assert cron.matches(datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))))
    assert not cron.matches(datetime(2024, 5, 1, 9, 31))


def test_next_after_is_strictly_after_and_aware_utc() -> None:
    cron = parse("30 9 * * *")
    assert cron.next_after(datetime(2024, 5, 1, 9, 30)) == datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    assert cron.next_after(datetime(2024, 5, 1, 9, 29, 59)) == datetime(
        2024, 5, 1, 9, 30, tzinfo=UTC
    )


def test_next_after_runs_out_at_the_end_of_year_9999() -> None:
    cron = parse("0 0 * * *")
    assert cron.next_after(datetime(9999, 12, 30, 12, 0)) == datetime(9999, 12, 31, tzinfo=UTC)
    assert cron.next_after(datetime(9999, 12, 31, 0, 0)) is None
    assert cron.next_after(datetime(9999, 12, 31, 23, 59, 59)) is None


def test_rare_schedules_are_found_without_walking_every_minute() -> None:
    cron = parse("0 0 * FEB FRI#5")  # a 29 February that is a Friday
    got = cron.fire_times(datetime(2024, 3, 1), 3)
    assert got == [datetime(y, 2, 29, tzinfo=UTC) for y in (2036, 2064, 2092)]


def test_nearest_weekday_and_last_weekday_follow_cloudflare() -> None:
    assert parse("0 0 1W * *").next_after(datetime(2022, 9, 30)) == datetime(
        2022, 10, 3, tzinfo=UTC
    )  # 1 Oct 2022 is a Saturday: Monday the 3rd
    assert parse("0 0 LW * *").next_after(datetime(2022, 7, 1)) == datetime(
        2022, 7, 29, tzinfo=UTC
    )  # 31 Jul 2022 is a Sunday: Friday the 29th
