"""Instalment plans for a loan: agreed by an agent, kept or broken from the payments since.

While a plan is current the loan is seen through the plan (`plan_view`): its next due date and
amount are the next agreed payment's, and it is not overdue, so the strategy's pre-due and
due-day reminders follow the plan's dates and no overdue (escalating) step matches it. A missed
agreed payment breaks the plan and the original schedule, overdue and all, resumes.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, insert, select

from cuikuan.domain.arrangements import Agreed, next_agreed, plan_state, validate_schedule
from cuikuan.domain.dates import parse_date
from cuikuan.domain.money import currency_digits
from cuikuan.errors import InputError, NotFound
from cuikuan.services import audit
from cuikuan.services.portfolio import loan_positions
from cuikuan.settings import Settings
from cuikuan.store.events import emit
from cuikuan.store.schema import arrangements, loans, payments
from cuikuan.store.settlements import record_settlements
from cuikuan.store.times import as_utc

MAX_PAYMENTS = 120


def parse_schedule(text: str) -> list[tuple[date, Decimal]]:
    """Agreed payments written as people write them: "DATE:AMOUNT" (or "DATE AMOUNT"), separated
    by commas or lines, e.g. "2026-12-05:500, 2026-12-20:500"; InputError names the bad one."""
    items = []
    parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
    if not parts:
        raise InputError("a plan needs at least one payment, DATE:AMOUNT such as 2026-12-05:500")
    if len(parts) > MAX_PAYMENTS:
        raise InputError(f"a plan has at most {MAX_PAYMENTS} payments")
    for part in parts:
        day, _, amount = re.sub(r"\s*[:\s]\s*", ":", part, count=1).partition(":")
        try:
            value = Decimal(amount.strip())
            items.append((parse_date(day.strip()), value))
        except (ValueError, InvalidOperation):
            raise InputError(
                f"{part[:60]!r}: expected DATE:AMOUNT such as 2026-12-05:500"
            ) from None
        if not value.is_finite() or value <= 0:
            raise InputError(f"{part[:60]!r}: the amount must be above zero")
    return items


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
            select(loans.c.id, loans.c.currency, loans.c.customer_id).where(
                loans.c.external_id == loan
            )
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
        # The borrower's loans only (a range of one customer id), not the whole book's.
        loan_positions(engine, today, settings, scope=(row.customer_id, row.customer_id + 1))
        .filter(loan_positions_filter(row.id))
        .row(0, named=True)
    )
    problem = validate_schedule(agreed, position["overdue_amount"], today)
    if problem:
        raise InputError(f"plan for {loan}: {problem}")
    with engine.begin() as conn:
        plan_id = int(
            conn.execute(
                insert(arrangements)
                .values(loan_id=row.id, agreed_at=now, agreed_by=by, status="current",
                        schedule=json.dumps([{"due": a.due.isoformat(), "amount": a.amount} for a in agreed]))
                .returning(arrangements.c.id)
            ).scalar_one()
        )  # fmt: skip
        audit.record(conn, by, "plan.create", f"loan:{loan}", None,
                     {"plan": plan_id, "schedule": [[a.due.isoformat(), a.amount] for a in agreed]},
                     now)  # fmt: skip
        emit(conn, "plan.created", row.customer_id,
             {"plan": plan_id, "loan": loan, "agreed_by": by,
              "schedule": [{"due": a.due.isoformat(), "amount_minor": a.amount} for a in agreed]},
             now)  # fmt: skip
    return plan_id


def loan_positions_filter(loan_id: int) -> pl.Expr:
    return pl.col("loan_id") == loan_id


def settle_arrangements(
    engine: Engine, settings: Settings, today: date, *, write: bool, now: datetime
) -> dict[int, tuple[date, int]]:
    """Decide every current plan on `today`; for each loan whose plan is still current, the
    next agreed payment not yet covered: (its date, what is still owed on it)."""
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
    keep: dict[int, tuple[date, int]] = {}
    changes = []
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
        upcoming = next_agreed(schedule, paid)
        if state == "current" and upcoming is not None:
            keep[plan.loan_id] = (upcoming[0].due, upcoming[1])
        else:
            changes.append((plan.id, state))
    if write:
        record_settlements(engine, arrangements, changes, now)
    return keep


def plan_view(
    positions: pl.DataFrame, current: dict[int, tuple[date, int]], today: date, first_bucket: str
) -> pl.DataFrame:
    """Loans on a current plan as the strategy should see them: due on the next agreed date for
    what is owed on it, not overdue; `on_plan` marks them (explain and the trail say so)."""
    if not current:
        return positions.with_columns(pl.lit(False).alias("on_plan"))
    plans = pl.DataFrame(
        {
            "loan_id": list(current),
            "_due": [d for d, _ in current.values()],
            "_owed": [o for _, o in current.values()],
        },
        schema={"loan_id": pl.Int64, "_due": pl.Date, "_owed": pl.Int64},
    )
    on = pl.col("_due").is_not_null()
    return (
        positions.join(plans, on="loan_id", how="left")
        .with_columns(
            pl.when(on).then(pl.col("_due")).otherwise(pl.col("next_due_date")).alias("next_due_date"),
            pl.when(on).then(pl.col("_owed")).otherwise(pl.col("next_due_amount")).alias("next_due_amount"),
            pl.when(on).then((pl.col("_due") - pl.lit(today)).dt.total_days())
            .otherwise(pl.col("days_to_due")).alias("days_to_due"),
            pl.when(on).then(0).otherwise(pl.col("overdue_amount")).alias("overdue_amount"),
            pl.when(on).then(0).otherwise(pl.col("dpd")).alias("dpd"),
            pl.when(on).then(pl.lit(first_bucket)).otherwise(pl.col("bucket")).alias("bucket"),
            on.alias("on_plan"),
        )
        .drop("_due", "_owed")
    )  # fmt: skip


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
