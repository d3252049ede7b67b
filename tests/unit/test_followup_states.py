"""State machines of promises and instalment plans, as properties over any payments and days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.arrangements import Agreed, next_agreed, plan_state
from cuikuan.domain.promises import Paid, Promise, promise_state

START = date(2026, 11, 29)
days = st.integers(0, 60)
amounts = st.integers(1, 100_000)


@st.composite
def schedules(draw: st.DrawFn) -> list[Agreed]:
    offsets = sorted(draw(st.sets(st.integers(1, 50), min_size=1, max_size=6)))
    return [Agreed(START + timedelta(days=o), draw(amounts)) for o in offsets]


@given(schedules(), st.integers(0, 700_000), days, st.integers(0, 5))
def test_a_plan_once_broken_stays_broken_and_paying_more_never_breaks_it(
    schedule: list[Agreed], paid: int, day: int, grace: int
) -> None:
    today = START + timedelta(days=day)
    state = plan_state(schedule, paid, today, grace)
    if state == "broken":
        assert plan_state(schedule, paid, today + timedelta(days=1), grace) == "broken"
    if state in ("current", "kept"):
        assert plan_state(schedule, paid + 1, today, grace) != "broken"
    if paid >= sum(a.amount for a in schedule):
        assert state == "kept"
    if state == "current":
        upcoming = next_agreed(schedule, paid)
        assert upcoming is not None and upcoming[0].due + timedelta(days=grace) >= today


@given(schedules(), days)
def test_paying_each_agreed_amount_on_its_date_keeps_the_plan_all_along(
    schedule: list[Agreed], day: int
) -> None:
    today = START + timedelta(days=day)
    paid_by_today = sum(a.amount for a in schedule if a.due <= today)
    assert plan_state(schedule, paid_by_today, today, 0) in ("current", "kept")


def paid(day: int, amount: int, hour: int = 12) -> Paid:
    return Paid(
        datetime(2026, 11, 29, hour, tzinfo=UTC) + timedelta(days=day),
        START + timedelta(days=day),
        amount,
    )


@given(
    st.integers(1, 20),
    st.none() | amounts,
    st.lists(st.tuples(st.integers(-5, 40), amounts), max_size=5),
    days,
    st.integers(0, 5),
)
def test_a_promise_is_decided_once_and_only_by_payments_in_its_window(
    due_in: int,
    amount: int | None,
    payments: list[tuple[int, int]],
    day: int,
    grace: int,
) -> None:
    promise = Promise(datetime(2026, 11, 29, 9, tzinfo=UTC), START + timedelta(days=due_in), amount)
    made = [paid(d, a) for d, a in payments]
    today = START + timedelta(days=day)
    state = promise_state(promise, made, today, grace)
    last_day = promise.due + timedelta(days=grace)
    counted = [p for p in made if p.at >= promise.made_at and p.local_day <= last_day]
    enough = bool(counted) and (amount is None or sum(p.amount for p in counted) >= amount)
    assert state == ("kept" if enough else "broken" if today > last_day else "pending")
    # Later payments, or ones made before the promise, never change a decided promise.
    if state != "pending":
        extra = [*made, paid(due_in + grace + 1, 10**9), paid(-3, 10**9)]
        assert promise_state(promise, extra, today + timedelta(days=5), grace) == state


def test_a_partial_payment_then_the_rest_before_the_grace_ends_keeps_it() -> None:
    promise = Promise(datetime(2026, 11, 29, 9, tzinfo=UTC), START + timedelta(days=3), 1000)
    first = [paid(1, 400)]
    assert promise_state(promise, first, START + timedelta(days=3), 2) == "pending"
    assert promise_state(promise, first, START + timedelta(days=6), 2) == "broken"
    both = [*first, paid(5, 600)]
    assert promise_state(promise, both, START + timedelta(days=6), 2) == "kept"
