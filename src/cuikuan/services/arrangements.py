"""Instalment plans for a loan: agreed by an agent, kept or broken from the payments since.

While a plan is current the borrower's loan gets no strategy reminder (`plan_current`) and is
not escalated; a missed agreed payment breaks the plan and the strategy resumes.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select

from cuikuan.domain.arrangements import Agreed, next_agreed, plan_state, validate_schedule
from cuikuan.domain.money import currency_digits
from cuikuan.errors import InputError, NotFound
from cuikuan.services.portfolio import loan_positions
from cuikuan.settings import Settings
from cuikuan.store.schema import arrangements, loans, payments
from cuikuan.store.settlements import record_settlements
from cuikuan.store.times import as_utc


def agree(
    engine: Engine,
    settings: Settings,
    loan: str,
    schedule: list[tuple[date, Decimal]],
    by: str,
    now: datetime,
) -> int:
    today = now.astimezone(ZoneInfo(settings.defaults.timezone)).date()
    with engine.connect() as conn:
        row = conn.execute(
            select(loans.c.id, loans.c.currency).where(loans.c.external_id == loan)
        ).first()
        if row is None:
            raise NotFound(f"no loan {loan!r} in the ledger")
        active = conn.execute(
            select(arrangements.c.id).where(
                arrangements.c.loan_id == row.id, arrangements.c.status == "current"
            )
        ).first()
    if active is not None:
        raise InputError(f"loan {loan!r} already has a current plan ({active.id})")
    digits = currency_digits(row.currency)
    agreed = [Agreed(due, int(amount.scaleb(digits))) for due, amount in schedule]
    position = (
        loan_positions(engine, today, settings)
        .filter(loan_positions_filter(row.id))
        .row(0, named=True)
    )
    problem = validate_schedule(agreed, position["overdue_amount"], today)
    if problem:
        raise InputError(f"plan for {loan}: {problem}")
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(arrangements)
                .values(loan_id=row.id, agreed_at=now, agreed_by=by, status="current",
                        schedule=json.dumps([{"due": a.due.isoformat(), "amount": a.amount} for a in agreed]))
                .returning(arrangements.c.id)
            ).scalar_one()
        )  # fmt: skip


def loan_positions_filter(loan_id: int) -> object:
    import polars as pl

    return pl.col("loan_id") == loan_id


def settle_arrangements(
    engine: Engine, settings: Settings, today: date, *, write: bool, now: datetime | None = None
) -> set[int]:
    """Decide every current plan on `today`; return the customers whose plan is still current."""
    zone = ZoneInfo(settings.defaults.timezone)
    grace = settings.plan.promise_grace_days
    with engine.connect() as conn:
        current = conn.execute(
            select(
                arrangements.c.id,
                arrangements.c.loan_id,
                arrangements.c.agreed_at,
                arrangements.c.schedule,
                loans.c.customer_id,
            )
            .join(loans, loans.c.id == arrangements.c.loan_id)
            .where(arrangements.c.status == "current")
        ).all()
        paid_rows = conn.execute(
            select(payments.c.loan_id, payments.c.paid_at, payments.c.amount).where(payments.c.loan_id.in_([c.loan_id for c in current]))
        ).all() if current else []  # fmt: skip
    keep, changes = set(), []
    for plan in current:
        agreed_at = as_utc(plan.agreed_at)
        paid = sum(
            amount for lid, at, amount in paid_rows
            if lid == plan.loan_id and as_utc(at) >= agreed_at
            and as_utc(at).astimezone(zone).date() <= today
        )  # fmt: skip
        schedule = [
            Agreed(date.fromisoformat(a["due"]), int(a["amount"]))
            for a in json.loads(plan.schedule)
        ]
        state = plan_state(schedule, paid, today, grace)
        if state == "current":
            keep.add(plan.customer_id)
        else:
            changes.append((plan.id, state))
    if write:
        record_settlements(engine, arrangements, changes, now)
    return keep


def describe(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(arrangements, loans.c.external_id.label("loan"))
            .join(loans, loans.c.id == arrangements.c.loan_id)
            .order_by(arrangements.c.id)
        ).all()
    out = []
    for r in rows:
        schedule = json.loads(r.schedule)
        nxt = next_agreed([Agreed(date.fromisoformat(a["due"]), a["amount"]) for a in schedule], 0)
        out.append({"id": r.id, "loan": r.loan, "status": r.status, "agreed_by": r.agreed_by, "schedule": schedule,
                    "first_due": nxt[0].due.isoformat() if nxt else None})  # fmt: skip
    return out
