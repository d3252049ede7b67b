"""Promises to pay: pending until their date plus grace, then kept or broken by the payments.

    promise_state(promise, payments, today, grace_days=2)   # "pending" | "kept" | "broken"

Kept: payments made from the promise onwards, up to the end of its date plus grace, reach the
promised amount (any payment at all when the borrower named no amount). A payment made before
the promise does not keep it. Broken: the grace has passed and it was not kept. While a promise
is pending the borrower gets no automated reminder; once broken, the strategy resumes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

State = Literal["pending", "kept", "broken"]


@dataclass(frozen=True)
class Promise:
    made_at: datetime  # UTC
    due: date  # the promised day, lender's local calendar
    amount: int | None  # minor units; None when no amount was named


@dataclass(frozen=True)
class Paid:
    at: datetime  # UTC
    local_day: date
    amount: int


def promise_state(
    promise: Promise, payments: Iterable[Paid], today: date, grace_days: int = 2
) -> State:
    last_day = promise.due + timedelta(days=grace_days)
    counted = [p for p in payments if p.at >= promise.made_at and p.local_day <= last_day]
    total = sum(p.amount for p in counted)
    if counted and (promise.amount is None or total >= promise.amount):
        return "kept"
    return "broken" if today > last_day else "pending"
