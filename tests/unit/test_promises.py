"""Promises to pay: kept, broken, partly paid, paid before the promise, no amount named."""

from datetime import UTC, date, datetime

from cuikuan.domain.promises import Paid, Promise, promise_state

MADE = datetime(2026, 11, 29, 2, tzinfo=UTC)
P = Promise(MADE, date(2026, 12, 1), 50000)


def paid(day: int, amount: int) -> Paid:
    return Paid(
        datetime(2026, 12, day, 4, tzinfo=UTC) if day else datetime(2026, 11, 28, 4, tzinfo=UTC),
        date(2026, 12, day) if day else date(2026, 11, 28),
        amount,
    )


def test_pending_until_the_date_plus_grace() -> None:
    assert promise_state(P, [], date(2026, 12, 3)) == "pending"
    assert promise_state(P, [], date(2026, 12, 4)) == "broken"


def test_kept_when_the_payments_reach_the_amount_in_time() -> None:
    assert promise_state(P, [paid(1, 50000)], date(2026, 12, 1)) == "kept"
    assert promise_state(P, [paid(1, 20000), paid(3, 30000)], date(2026, 12, 9)) == "kept"


def test_a_partial_payment_does_not_keep_it() -> None:
    assert promise_state(P, [paid(1, 20000)], date(2026, 12, 2)) == "pending"
    assert promise_state(P, [paid(1, 20000)], date(2026, 12, 4)) == "broken"


def test_a_payment_before_the_promise_or_after_the_grace_does_not_count() -> None:
    assert promise_state(P, [paid(0, 50000)], date(2026, 12, 4)) == "broken"
    assert promise_state(P, [paid(4, 50000)], date(2026, 12, 5)) == "broken"


def test_without_an_amount_any_payment_keeps_it() -> None:
    assert (
        promise_state(Promise(MADE, date(2026, 12, 1), None), [paid(2, 100)], date(2026, 12, 2))
        == "kept"
    )
