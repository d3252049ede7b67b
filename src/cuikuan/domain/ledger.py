"""Allocation, days past due and buckets for one loan: the reference the set-at-a-time code matches.

Rules (DESIGN.md glossary):
- a payment pays the oldest unpaid instalment first (by due date, then number);
- an instalment is overdue once the as-of date is past its due date plus the grace days;
- DPD is the as-of date minus the due date of the oldest overdue instalment, 0 when none is;
- a payment is counted once: an instalment snapshot's paid amounts cover every payment up to the
  snapshot moment, so only payments after it are allocated on top (see docs/ledger.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple


class Instalment(NamedTuple):
    """A named tuple, not a frozen dataclass: the send-time re-check builds one for every
    unpaid instalment of thousands of loans a round, and a frozen dataclass costs several
    times as much to make."""

    number: int
    due_date: date
    amount_due: int
    amount_paid: int = 0

    @property
    def remaining(self) -> int:
        return max(self.amount_due - self.amount_paid, 0)


@dataclass(frozen=True)
class Payment:
    paid_at: datetime
    amount: int


class LoanPosition(NamedTuple):  # made once a loan a re-check: as cheap as Instalment
    dpd: int
    days_to_due: int | None
    outstanding: int
    overdue_amount: int
    next_due_date: date | None
    next_due_amount: int
    paid_off: bool


@dataclass(frozen=True)
class BucketEdge:
    name: str
    max_dpd: int | None


def in_payment_order(instalments: Iterable[Instalment]) -> list[Instalment]:
    return sorted(instalments, key=lambda i: (i.due_date, i.number))


def allocate(instalments: Sequence[Instalment], amount: int) -> tuple[list[Instalment], int]:
    """Apply `amount` to the oldest unpaid instalments; return them and the unapplied surplus."""
    if amount < 0:
        raise ValueError("cannot allocate a negative amount")
    ordered = in_payment_order(instalments)
    if amount == 0:
        return ordered, 0  # the usual case at send time: instalments are frozen, nothing to copy
    left = amount
    out = []
    for inst in ordered:
        take = min(left, inst.remaining)
        left -= take
        out.append(
            inst if take == 0 else
            Instalment(inst.number, inst.due_date, inst.amount_due, inst.amount_paid + take)
        )  # fmt: skip
    return out, left


def countable_payments(
    payments: Iterable[Payment], snapshot_at: datetime | None, cutoff: datetime
) -> int:
    """Sum of the payments that neither the snapshot covers nor lie after the as-of cut-off."""
    return sum(
        p.amount
        for p in payments
        if p.paid_at < cutoff and (snapshot_at is None or p.paid_at > snapshot_at)
    )


def position(instalments: Sequence[Instalment], as_of: date, grace_days: int = 0) -> LoanPosition:
    oldest_late: Instalment | None = None
    nxt: Instalment | None = None
    outstanding = overdue_amount = 0
    for inst in in_payment_order(instalments):
        left = inst.remaining
        if left == 0:
            continue
        outstanding += left
        if (as_of - inst.due_date).days > grace_days:
            overdue_amount += left
            oldest_late = oldest_late or inst
        elif nxt is None:
            nxt = inst
    return LoanPosition(
        dpd=(as_of - oldest_late.due_date).days if oldest_late else 0,
        days_to_due=(nxt.due_date - as_of).days if nxt else None,
        outstanding=outstanding,
        overdue_amount=overdue_amount,
        next_due_date=nxt.due_date if nxt else None,
        next_due_amount=nxt.remaining if nxt else 0,
        paid_off=outstanding == 0,
    )


def bucket_for(dpd: int, edges: Sequence[BucketEdge]) -> str:
    for edge in edges:
        if edge.max_dpd is None or dpd <= edge.max_dpd:
            return edge.name
    return edges[-1].name
