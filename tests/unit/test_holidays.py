"""Holiday data: the lender's file over the library, years nobody knows, shifts past the due."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.holidays import (
    Calendar,
    HolidayFileError,
    YearDays,
    apply,
    dump_years,
    missing_data_warning,
    parse_years,
)
from cuikuan.domain.policy import PACKS, holiday_outcome

# 2027 as the State Council might publish it (the test's own data, not a prediction).
CN_2027 = parse_years(
    {
        "cn": {
            "2027": {
                "holidays": ["2027-01-01", "2027-02-05..2027-02-11", "2027-10-01..2027-10-07"],
                "workdays": ["2027-02-14", "2027-09-26"],
            }
        }
    }
)["cn"]


def test_a_year_the_library_does_not_know_never_fails() -> None:
    working = Calendar("cn", {}, "working")
    works, note = working.working(date(2027, 1, 4))  # a Monday
    assert works is True and note and "2027" in note and "working" in note
    assert working.working(date(2027, 1, 9))[0] is False  # a Saturday: an ordinary week
    stop = Calendar("cn", {}, "stop")
    works, note = stop.working(date(2027, 1, 4))
    assert works is None and note and "stop" in note
    for rule in ("skip", "shift"):
        out = apply(date(2027, 1, 4), rule, stop)
        assert out.day is None and out.reason and "2027" in out.reason
    assert apply(date(2027, 1, 4), "ignore", stop).day == date(2027, 1, 4)


def test_the_lenders_file_takes_precedence_and_is_taken_whole() -> None:
    cal = Calendar("cn", CN_2027, "stop")
    assert cal.working(date(2027, 2, 8)) == (False, None)  # Spring Festival, a Monday
    assert cal.working(date(2027, 2, 14)) == (True, None)  # make-up Sunday
    assert cal.working(date(2027, 3, 1)) == (True, None)  # an ordinary Monday, no note
    assert apply(date(2027, 2, 5), "shift", cal).day == date(2027, 2, 12)
    # A year in the file replaces the library's: 2026's National Day made a working day.
    own_2026 = {2026: YearDays(frozenset(), frozenset())}
    assert Calendar("cn", own_2026).working(date(2026, 10, 1)) == (True, None)
    assert Calendar("cn").working(date(2026, 10, 1)) == (False, None)


def test_a_pre_due_reminder_is_never_shifted_onto_or_past_its_due_date() -> None:
    # 2026-10-01 (National Day) to 2026-10-08: a 3-days-before reminder would arrive late.
    out = holiday_outcome(date(2026, 10, 1), "shift", PACKS["cn"], days_to_due=3)
    assert out.day is None and out.reason and "due date" in out.reason
    out = holiday_outcome(date(2026, 10, 1), "shift", PACKS["cn"], days_to_due=10)
    assert out.day == date(2026, 10, 8)
    # Overdue steps (days to due <= 0) may shift any distance.
    assert holiday_outcome(date(2026, 10, 1), "shift", PACKS["cn"], days_to_due=-5).day


def test_december_warns_when_next_years_data_is_missing() -> None:
    assert missing_data_warning(date(2026, 11, 30), Calendar("cn")) is None
    warning = missing_data_warning(date(2026, 12, 1), Calendar("cn"))
    assert warning and "2027" in warning
    assert missing_data_warning(date(2026, 12, 1), Calendar("cn", CN_2027)) is None
    assert "2027" in (missing_data_warning(date(2027, 3, 1), Calendar("cn")) or "")
    assert missing_data_warning(date(2026, 12, 1), Calendar("US")) is None


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"cn": {"2027": {"holidays": ["2027-02-30"]}}}, "cn.2027.holidays[0]"),
        ({"cn": {"2027": {"holidays": ["2028-01-01"]}}}, "cn.2027.holidays[0]"),
        ({"cn": {"2027": {"holidays": "2027-01-01"}}}, "cn.2027.holidays"),
        ({"cn": {"2027": {"holiday": []}}}, "cn.2027.holiday"),
        ({"cn": {"27": {}}}, "cn.27"),
        ({"cn": {"2027": {"holidays": ["2027-01-01"], "workdays": ["2027-01-01"]}}}, "cn.2027"),
        ({"cn": {"2027": {"holidays": ["2027-03-01..2027-02-01"]}}}, "cn.2027.holidays[0]"),
    ],
)
def test_a_bad_file_names_the_field(data: dict[str, object], where: str) -> None:
    with pytest.raises(HolidayFileError) as caught:
        parse_years(data)  # type: ignore[arg-type]
    assert str(caught.value).startswith(where)


@given(
    st.sets(st.integers(0, 364), max_size=60),
    st.sets(st.integers(0, 364), max_size=10),
)
def test_the_file_written_reads_back_the_same(off: set[int], work: set[int]) -> None:
    start = date(2027, 1, 1)
    days = YearDays(
        frozenset(start + timedelta(days=k) for k in off - work),
        frozenset(start + timedelta(days=k) for k in work),
    )
    import tomllib

    again = parse_years(tomllib.loads(dump_years({"cn": {2027: days}})))
    assert again == {"cn": {2027: days}}


def test_the_policy_carries_the_calendar() -> None:
    contact = replace(PACKS["cn"], holiday_years=CN_2027, unknown_holidays="stop")
    assert contact.calendar.working(date(2027, 2, 8)) == (False, None)
    assert contact.calendar.working(date(2028, 2, 8))[0] is None
