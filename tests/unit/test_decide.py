"""The day's decisions as columns equal the row-by-row reference (`decide_row`), on random days
with shared numbers, history, holidays, several zones, suppressions, control groups and paused
templates; and caps count a message once even when it went to the person's own number."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cuikuan.domain import policy
from cuikuan.domain.decide import SCHEMA, decide, idempotency_key
from cuikuan.domain.frame_types import CHOSEN, HISTORY

CONTACT = policy.policy_for("cn")
# The packs' caps, and the longest reach settings allow (a week's gap) with looser day caps.
CONTACTS = [
    CONTACT,
    policy.policy_for("cn", max_per_day=2, max_per_7_days=4, min_gap=timedelta(hours=168)),
]
STEPS = [("pre_due", "sms", "ignore", 1), ("due", "email", "shift", 1), ("m1", "sms", "skip", 3)]
NUMBERS = ["+8613800138000", "+8613900139000", "+14155550123", "+447700900123", "+8618612345678"]
ZONES = [None, None, "Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kolkata"]
FLAGS = [[]] * 12 + [["dispute"], ["hardship", "complaint"], ["vip"]]

CHOSEN_SCHEMA = {**CHOSEN, "on_plan": pl.Boolean}
HISTORY_SCHEMA = HISTORY


@st.composite
def person(draw: st.DrawFn, cid: int) -> dict[str, object]:
    index = draw(st.integers(0, len(STEPS) - 1))
    step, channel, holidays, repeat = STEPS[index]
    phones = draw(st.lists(st.sampled_from(NUMBERS), max_size=2, unique=True))
    return {
        "customer_id": cid, "customer": f"C{cid:03d}", "step": step, "step_index": index,
        "channel": channel, "template": draw(st.sampled_from(["t_a"] * 8 + ["t_b", "t_c"])),
        "control": draw(st.booleans()) and draw(st.booleans()), "holidays": holidays,
        "repeat_every_days": repeat, "external_id": f'L"{cid}\\',
        "dpd": draw(st.integers(0, 40)), "days_to_due": draw(st.one_of(st.none(), st.integers(-5, 5))),
        "outstanding": draw(st.integers(0, 10**6)), "on_plan": draw(st.booleans()),
        "phones": phones, "mobiles": [p for p in phones if not p.startswith("+44")],
        "email": draw(st.sampled_from([None] + [f"c{cid}@example.com"] * 5)),
        "timezone": draw(st.sampled_from(ZONES)), "flags": draw(st.sampled_from(FLAGS)),
        "opted_out": draw(st.sampled_from([[]] * 12 + [["sms"], ["email", "sms"]])),
        "paid_off": draw(st.integers(0, 15)) == 0,
        "promise_pending": draw(st.integers(0, 15)) == 0,
        "paused": draw(st.sampled_from([None] * 12 + ["", "说已还款"])),
    }  # fmt: skip


@st.composite
def day(
    draw: st.DrawFn,
) -> tuple[pl.DataFrame, pl.DataFrame, date, dict[str, str], policy.ContactPolicy]:
    n = draw(st.integers(1, 25))
    people = [draw(person(cid)) for cid in range(1, n + 1)]
    # 2026-10-01 is in China's National Day holiday; 2026-10-10 a make-up working Saturday.
    as_of = draw(
        st.sampled_from(
            [date(2026, 11, 30), date(2026, 10, 1), date(2026, 10, 10), date(2026, 3, 8)]
        )
    )
    history = []
    for i in range(draw(st.integers(0, 40))):
        cid = draw(st.integers(1, n + 2))
        # Older than a week and a day counts against no cap (decide.caps_horizon); drawn too.
        back = draw(st.integers(-1, 6)) if i % 3 else draw(st.integers(-1, 20))
        at = datetime.combine(as_of, datetime.min.time(), UTC) - timedelta(
            hours=back * 24 - draw(st.integers(0, 23))
        )
        step = draw(st.sampled_from([s[0] for s in STEPS]))
        history.append({
            "customer_id": cid, "recipient": draw(st.sampled_from(NUMBERS)), "step": step,
            "plan_date": as_of - timedelta(days=back), "key": idempotency_key(f"C{cid:03d}", step, as_of - timedelta(days=back)),
            "at": draw(st.sampled_from([at, None])) if i % 5 == 0 else at,
            "status": draw(st.sampled_from(["sent", "delivered", "planned", "sent", "failed", "suppressed"])),
            "control": draw(st.booleans()) and draw(st.booleans()),
        })  # fmt: skip
    blocked = draw(st.sampled_from([{}, {"t_c": "complaints 3.1% over 24 h"}]))
    chosen = pl.DataFrame(people, schema=CHOSEN_SCHEMA)
    contact = draw(st.sampled_from(CONTACTS))
    return chosen, pl.DataFrame(history, schema=HISTORY_SCHEMA), as_of, blocked, contact


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day())
def test_columns_equal_row_by_row(
    case: tuple[pl.DataFrame, pl.DataFrame, date, dict[str, str], policy.ContactPolicy],
) -> None:
    chosen, history, as_of, blocked, contact = case
    reference = decide(chosen, history, contact, "Asia/Shanghai", as_of, blocked, row_by_row=True)
    columns = decide(chosen, history, contact, "Asia/Shanghai", as_of, blocked)
    assert columns.columns == reference.columns
    for got, want in zip(
        columns.iter_rows(named=True), reference.iter_rows(named=True), strict=True
    ):
        assert {k: got[k] for k in SCHEMA} == {k: want[k] for k in SCHEMA}, got["customer"]


def test_a_message_to_ones_own_number_counts_once() -> None:
    """Two messages this week to the person's own number: the third is allowed (max 3)."""
    as_of = date(2026, 11, 30)
    row = {c: None for c in CHOSEN_SCHEMA} | {
        "customer_id": 1, "customer": "C001", "step": "m1", "step_index": 0, "channel": "sms",
        "template": "t", "control": False, "holidays": "ignore", "repeat_every_days": 1,
        "external_id": "L1", "dpd": 3, "days_to_due": -3, "outstanding": 100, "on_plan": False,
        "phones": [NUMBERS[0]], "mobiles": [NUMBERS[0]], "timezone": "Asia/Shanghai",
        "flags": [], "opted_out": [], "paid_off": False, "promise_pending": False,
    }  # fmt: skip
    sent = [datetime(2026, 11, 27, 2, tzinfo=UTC), datetime(2026, 11, 28, 2, tzinfo=UTC)]
    history = pl.DataFrame(
        [
            {"customer_id": 1, "recipient": NUMBERS[0], "step": "m1", "plan_date": at.date(),
             "key": f"k{i}", "at": at, "status": "delivered", "control": False}
            for i, at in enumerate(sent)
        ],
        schema=HISTORY_SCHEMA,
    )  # fmt: skip
    for row_by_row in (True, False):
        out = decide(pl.DataFrame([row], schema=CHOSEN_SCHEMA), history, CONTACT, "Asia/Shanghai",
                     as_of, {}, row_by_row=row_by_row)  # fmt: skip
        assert out["status"].to_list() == ["planned"], json.loads(out["trail"][0])
        third = history.vstack(
            pl.DataFrame([{"customer_id": 1, "recipient": NUMBERS[0], "step": "m1",
                           "plan_date": date(2026, 11, 29), "key": "k9",
                           "at": datetime(2026, 11, 29, 2, tzinfo=UTC), "status": "sent",
                           "control": False}], schema=HISTORY_SCHEMA)
        )  # fmt: skip
        out = decide(pl.DataFrame([row], schema=CHOSEN_SCHEMA), third, CONTACT, "Asia/Shanghai",
                     as_of, {}, row_by_row=row_by_row)  # fmt: skip
        assert out["status"].to_list() == ["suppressed"]
        assert "in the last 7 days" in str(out["reason"][0])
