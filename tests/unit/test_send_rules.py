"""The send-time checks are the plan's: the same caps on the same history (each message once),
zone keys that follow the table, and a stop in any wording wins."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from cuikuan.domain import policy, send_rules
from cuikuan.domain.decide import Caps, cap_decision, cap_reason_at, caps_of
from cuikuan.domain.frame_types import HISTORY
from cuikuan.domain.replies import classify
from cuikuan.domain.zones import number_zones, zone_key, zone_key_expr
from cuikuan.services.replies import reply_rules

CONTACT = policy.policy_for("cn")
START = datetime(2026, 11, 20, tzinfo=UTC)
PERSON, OTHER = 1, 2
OWN, SHARED, ELSEWHERE = "+8613800138000", "+8613900139000", "+8618612345678"
HISTORY_SCHEMA = HISTORY


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, str, str, datetime]]:
    """Earlier messages: to the person on their own number, to the person elsewhere, and to
    another person on the shared number; each with its own key."""
    out = []
    for k in range(draw(st.integers(0, 8))):
        who, where = draw(
            st.sampled_from([(PERSON, OWN), (PERSON, ELSEWHERE), (OTHER, SHARED), (PERSON, SHARED)])
        )
        hours = draw(st.integers(0, 10 * 24))
        out.append((who, where, f"k{k}", START + timedelta(hours=hours)))
    return out


def _plan_caps(history: list[tuple[int, str, str, datetime]]) -> Caps:
    frame = pl.DataFrame(
        [(c, r, "s", a.date(), k, a, "sent", False) for c, r, k, a in history],
        schema=HISTORY_SCHEMA,
        orient="row",
    )
    return caps_of(frame)


def _send_caps(history: list[tuple[int, str, str, datetime]]) -> Caps:
    # As dispatch.recheck builds them: one add per earlier message.
    caps = Caps(defaultdict(dict), defaultdict(dict), defaultdict(list), set())
    for c, r, k, a in history:
        caps.add(c, r, "s", a.date(), k, a)
    return caps


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(0, 12 * 24 * 4), st.sampled_from([OWN, SHARED]))
def test_send_time_caps_equal_plan_time_caps(
    history: list[tuple[int, str, str, datetime]], quarter_hours: int, recipient: str
) -> None:
    at = START + timedelta(minutes=15 * quarter_hours)
    past = [h for h in history if h[3] <= at]
    plan = _plan_caps(past)
    status, _, earliest = cap_decision(
        PERSON, recipient, at, at + timedelta(seconds=1), "Asia/Shanghai", plan, CONTACT
    )
    send = cap_reason_at(_send_caps(past), PERSON, recipient, at, CONTACT, "Asia/Shanghai")
    assert (status == "planned") == (send is None)
    if status == "planned":
        assert earliest == at


def test_a_message_to_the_persons_own_number_counts_once_at_send_time() -> None:
    # Two messages this week to the person on their own number: a third is allowed (max 3).
    history = [(PERSON, OWN, "a", START), (PERSON, OWN, "b", START + timedelta(days=2))]
    at = START + timedelta(days=4)
    assert cap_reason_at(_send_caps(history), PERSON, OWN, at, CONTACT, "Asia/Shanghai") is None


def test_a_message_parked_on_a_later_day_does_not_block_today() -> None:
    later = START + timedelta(days=3)
    caps = _send_caps([(PERSON, OWN, "parked", later)])
    status, reason, _ = cap_decision(
        PERSON, OWN, START, START + timedelta(hours=13), "Asia/Shanghai", caps, CONTACT
    )
    assert status == "planned", reason


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=0, max_size=14))
def test_zone_keys_over_a_column_equal_the_row_rule(digits: str) -> None:
    number = "+" + digits
    got = pl.DataFrame({"n": [number]}).select(zone_key_expr(pl.col("n"))).item()
    assert got == zone_key(number)


def test_zones_follow_the_exchange_and_split_area_codes_give_every_zone() -> None:
    assert number_zones("+12087031234") == ("America/Denver",)
    assert number_zones("+12087041234") == ("America/Los_Angeles",)
    assert zone_key("+12087031234") != zone_key("+12087041234")  # the cache cannot mix them
    kentucky = set(number_zones("+12709991234"))
    assert {"America/New_York", "America/Chicago"} <= kentucky
    cache = policy.ZoneCache("Asia/Shanghai")
    assert cache.zones(None, ["+12087031234"]) == ["America/Denver"]
    assert cache.zones(None, ["+12087041234"]) == ["America/Los_Angeles"]
    # Declared zone and the numbers' zones together, unless the lender chose otherwise.
    assert cache.zones("America/New_York", ["+12087041234"]) == [
        "America/New_York",
        "America/Los_Angeles",
    ]
    assert policy.ZoneCache("Asia/Shanghai", True).zones("America/New_York", ["+12087041234"]) == [
        "America/New_York"
    ]


RULES = reply_rules()
STOPS = ["不要再发了", "别再发短信", "退订", "stop texting me", "quit messaging me", "unsubscribe"]
FILLER = st.text(
    alphabet=st.sampled_from(
        list("我的钱已经还了下个月号明天谢谢好烦呀!?，。 abcdefghijklmnopqrstuvwxyz0123456789😡")
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(FILLER, st.sampled_from(STOPS), FILLER)
def test_an_opt_out_anywhere_in_a_reply_wins(before: str, stop: str, after: str) -> None:
    reading = classify(f"{before} {stop}. {after}", date(2026, 12, 4), RULES)
    assert "opt_out" in reading.safety


def test_mixed_replies_keep_every_safety_meaning_and_go_to_a_person() -> None:
    today = date(2026, 12, 4)
    cases = {
        "烦死了不要再发，再发我就打12378": {"opt_out", "complaint"},
        "钱上周就转了，以后别发了": {"opt_out"},
        "quit messaging me or I'm calling my lawyer": {"opt_out", "complaint"},
        "this was my father's phone, he died in May": {"deceased"},
        "号码换人了，我不是你们要找的人": {"wrong_number"},
    }
    for text, wanted in cases.items():
        reading = classify(text, today, RULES)
        assert wanted <= set(reading.safety), (text, reading)
    annoyed = classify("烦死了不要再发", today, RULES)
    assert "deceased" not in annoyed.safety  # 烦死了 is not a death


def test_window_decision_retimes_before_the_opening() -> None:
    zones = ["America/New_York"]
    early = datetime(2026, 12, 4, 11, tzinfo=UTC)  # 06:00 in New York
    when, window = send_rules.window_decision(early, zones, CONTACT)
    assert (
        when == "later"
        and window is not None
        and window[0] == datetime(2026, 12, 4, 13, tzinfo=UTC)
    )
    assert send_rules.window_decision(early + timedelta(hours=3), zones, CONTACT)[0] == "send"
    assert (
        send_rules.window_decision(datetime(2026, 12, 5, 3, tzinfo=UTC), zones, CONTACT)[0]
        == "closed"
    )
