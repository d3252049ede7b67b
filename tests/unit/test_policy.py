"""The contact policy: windows in local time (several zones, DST), caps, holidays, suppressions."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.policy import (
    PACKS,
    allowed_window,
    candidate_zones,
    cap_reason,
    holiday_outcome,
    inside_window,
    is_working_day,
    policy_for,
    suppression_reasons,
)

CN = PACKS["cn"]
ZONES = ["Asia/Shanghai", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
         "America/Anchorage", "Pacific/Honolulu", "Europe/London", "Europe/Berlin", "Australia/Sydney",
         "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu"]  # fmt: skip


@given(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
    st.integers(6, 10),
    st.integers(17, 22),
)
def test_no_window_lies_outside_the_local_window_of_any_candidate_zone(
    day: date, zones: list[str], start: int, end: int
) -> None:
    policy = policy_for("cn", window_start=time(start), window_end=time(end))
    window = allowed_window(day, zones, policy)
    if window is None:
        return
    lo, hi = window
    assert lo < hi
    for moment in (lo, lo + (hi - lo) / 2, hi):
        assert inside_window(moment, zones, policy)
        for name in zones:
            local = moment.astimezone(ZoneInfo(name))
            assert time(start) <= local.time() <= time(end)


def test_a_single_chinese_zone_gives_eight_to_nine() -> None:
    lo, hi = allowed_window(date(2026, 11, 29), ["Asia/Shanghai"], CN)  # type: ignore[misc]
    assert (lo, hi) == (
        datetime(2026, 11, 29, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 13, tzinfo=UTC),
    )


def test_two_zones_allow_only_the_overlap_and_far_zones_none() -> None:
    lo, hi = allowed_window(date(2026, 7, 1), ["America/New_York", "America/Los_Angeles"], CN)  # type: ignore[misc]
    assert lo == datetime(2026, 7, 1, 15, tzinfo=UTC)  # 08:00 in Los Angeles
    assert hi == datetime(2026, 7, 2, 1, tzinfo=UTC)  # 21:00 in New York
    assert allowed_window(date(2026, 7, 1), ["Asia/Shanghai", "America/New_York"], CN) == (
        datetime(2026, 7, 1, 12, tzinfo=UTC),  # 20:00 in Shanghai is 08:00 in New York
        datetime(2026, 7, 1, 13, tzinfo=UTC),
    )
    assert allowed_window(date(2026, 7, 1), ["Pacific/Honolulu", "Asia/Kolkata"], CN) is None


def test_dst_change_days_keep_the_local_window() -> None:
    # 2026-03-08 US clocks go forward; 2026-11-01 back.
    for day in (date(2026, 3, 8), date(2026, 11, 1)):
        lo, hi = allowed_window(day, ["America/New_York"], CN)  # type: ignore[misc]
        assert lo.astimezone(ZoneInfo("America/New_York")).time() == time(8)
        assert hi.astimezone(ZoneInfo("America/New_York")).time() == time(21)


def test_zones_come_from_customer_then_phones_then_default() -> None:
    # The declared zone and every zone the numbers may be in (the window suits every place);
    # only the declared one when the lender chooses so.
    assert candidate_zones("Europe/London", ["+8613800138000"], "Asia/Shanghai") == [
        "Europe/London",
        "Asia/Shanghai",
    ]
    assert candidate_zones(
        "Europe/London", ["+8613800138000"], "Asia/Shanghai", declared_only=True
    ) == ["Europe/London"]
    assert candidate_zones(None, ["+8613800138000", "+12125551234"], "Asia/Shanghai") == [
        "Asia/Shanghai",
        "America/New_York",
    ]
    assert candidate_zones(None, [], "Asia/Shanghai") == ["Asia/Shanghai"]


SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=SH).astimezone(UTC)


def test_caps_per_day_per_week_and_gap() -> None:
    assert cap_reason([], at(29, 10), CN, "Asia/Shanghai") is None
    assert "a day" in (cap_reason([at(29, 8)], at(29, 20), CN, "Asia/Shanghai") or "")
    assert "apart" in (cap_reason([at(28, 20)], at(29, 9), CN, "Asia/Shanghai") or "")
    assert cap_reason([at(28, 9)], at(29, 9), CN, "Asia/Shanghai") is None
    assert "7 days" in (
        cap_reason([at(24, 9), at(26, 9), at(28, 9)], at(29, 10), CN, "Asia/Shanghai") or ""
    )
    assert cap_reason([at(20, 9), at(21, 9), at(22, 9)], at(29, 10), CN, "Asia/Shanghai") is None


@given(st.lists(st.integers(0, 14 * 24), max_size=30))
def test_sending_whenever_the_caps_allow_never_exceeds_them(hours: list[int]) -> None:
    sent: list[datetime] = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for h in sorted(hours):
        moment = start + timedelta(hours=h)
        if cap_reason(sent, moment, CN, "Asia/Shanghai") is None:
            sent.append(moment)
    for moment in sent:
        days = [s for s in sent if s.astimezone(SH).date() == moment.astimezone(SH).date()]
        week = [s for s in sent if timedelta(0) <= moment - s < timedelta(days=7)]
        assert len(days) <= CN.max_per_day and len(week) <= CN.max_per_7_days
    assert all(b - a >= CN.min_gap for a, b in itertools.pairwise(sent))


def test_chinese_holidays_and_make_up_working_days() -> None:
    assert not is_working_day(date(2026, 10, 1), "cn")  # National Day
    assert not is_working_day(date(2026, 11, 29), "cn")  # a Sunday
    assert is_working_day(date(2026, 11, 30), "cn")
    assert holiday_outcome(date(2026, 10, 1), "shift", CN).day == date(2026, 10, 8)
    assert holiday_outcome(date(2026, 10, 1), "skip", CN).day is None
    assert holiday_outcome(date(2026, 10, 1), "ignore", CN).day == date(2026, 10, 1)
    assert not is_working_day(date(2026, 11, 26), "US")  # Thanksgiving
    assert holiday_outcome(date(2026, 11, 26), "shift", PACKS["us"]).day == date(2026, 11, 27)


def test_suppressions_from_flags_opt_outs_and_state() -> None:
    assert suppression_reasons(["deceased"], [], "sms", False) == ["deceased"]
    assert suppression_reasons([], ["sms"], "sms", False) == ["opted_out"]
    assert suppression_reasons([], ["sms"], "email", False) == []
    assert suppression_reasons(["dispute"], [], "sms", True, promise_pending=True) == [
        "dispute",
        "promise_pending",
        "paid_in_full",
    ]


@pytest.mark.parametrize("pack", ["cn", "us", "eu"])
def test_every_pack_has_the_eight_to_nine_window(pack: str) -> None:
    assert (PACKS[pack].window_start, PACKS[pack].window_end) == (time(8), time(21))


def test_which_steps_speak_only_to_late_borrowers() -> None:
    from cuikuan.domain.strategy import Step

    def step(**kw: object) -> Step:
        return Step.model_validate({"id": "s", "template": "t", **kw})

    assert not step(days_to_due=3, dpd=0).targets_overdue
    assert not step(days_to_due=3).targets_overdue
    assert step(dpd=[1, 7]).targets_overdue
    assert step(dpd={"every": 7, "from": 31, "to": 60}).targets_overdue
    assert not step(dpd=[0, 7]).targets_overdue
