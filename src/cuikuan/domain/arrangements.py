"""Instalment plans agreed with a borrower (协商分期): kept while each agreed amount is paid by its
date (plus grace), broken at the first one missed, kept for good when all are paid.

    state = plan_state(schedule, paid_since_agreement, today, grace_days=2)

Payments made since the agreement count towards the plan cumulatively: 300 paid against two
agreed amounts of 200 has covered the first and 100 of the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

PlanState = Literal["current", "kept", "broken"]


@dataclass(frozen=True)
class Agreed:
    due: date
    amount: int  # minor units


def validate_schedule(schedule: Sequence[Agreed], overdue: int, today: date) -> str | None:
    """Why a proposed schedule cannot be agreed, or None."""
    if not schedule:
        return "a plan needs at least one payment"
    if any(a.amount <= 0 for a in schedule):
        return "every agreed amount must be more than zero"
    dates = [a.due for a in schedule]
    if dates != sorted(dates) or len(set(dates)) != len(dates):
        return "agreed dates must be distinct and in order"
    if dates[0] < today:
        return "the first agreed date is in the past"
    if sum(a.amount for a in schedule) < overdue:
        return f"the agreed amounts ({sum(a.amount for a in schedule)}) do not cover the overdue amount ({overdue})"
    return None


def plan_state(
    schedule: Sequence[Agreed], paid: int, today: date, grace_days: int = 2
) -> PlanState:
    if paid >= sum(a.amount for a in schedule):
        return "kept"
    owed = 0
    for agreed in schedule:
        owed += agreed.amount
        if today > agreed.due + timedelta(days=grace_days) and paid < owed:
            return "broken"
    return "current"


def next_agreed(schedule: Sequence[Agreed], paid: int) -> tuple[Agreed, int] | None:
    """The first agreed payment not yet covered, and what is still owed on it."""
    owed = 0
    for agreed in schedule:
        owed += agreed.amount
        if paid < owed:
            return agreed, min(agreed.amount, owed - paid)
    return None
