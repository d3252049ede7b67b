"""Loans as they stand at a moment, read for a few loans (never the whole book).

    found = loans_at(conn, [12, 15], now, today, grace_days=3)
    found[12].position.overdue_amount, found[12].payments

The rules are domain.ledger's row rules (the reference the plan's column path is tested
against): the snapshot's paid amounts, then the payments it does not cover allocated on top.
Fully paid instalments are left out unless their due date is `asked` about: they change neither
the allocation nor the position (tests/unit/test_ledger.py holds this), and on a long book they
are most of the rows. Used by the send-time re-check and by the tasks that close themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, or_, select

from cuikuan.domain import ledger
from cuikuan.store.schema import instalments, loans, payments
from cuikuan.store.times import as_utc


@dataclass(frozen=True)
class LoanState:
    customer_id: int
    instalments: Sequence[ledger.Instalment]  # with the countable payments allocated
    position: ledger.LoanPosition
    snapshot_at: datetime | None  # the instalments' paid amounts cover payments up to here
    payments: Sequence[tuple[datetime, datetime, int]]  # (paid at, recorded at, amount)


def loans_at(
    conn: Connection,
    loan_ids: Collection[int],
    now: datetime,
    today: date,
    grace_days: int,
    asked: Collection[date] = (),
) -> dict[int, LoanState]:
    ids = sorted(set(loan_ids))
    heads = {
        lid: (cid, snap)
        for lid, cid, snap in conn.execute(
            select(loans.c.id, loans.c.customer_id, loans.c.paid_snapshot_at).where(
                loans.c.id.in_(ids)
            )
        ).all()
    }
    # Rows fetched all at once (`.all()`): a fetch a row was a tenth of the re-check's time.
    schedule: dict[int, list[ledger.Instalment]] = defaultdict(list)
    for lid, number, due, amount, paid in conn.execute(
        select(
            instalments.c.loan_id,
            instalments.c.number,
            instalments.c.due_date,
            instalments.c.amount_due,
            instalments.c.amount_paid,
        ).where(
            instalments.c.loan_id.in_(ids),
            or_(
                instalments.c.amount_paid < instalments.c.amount_due,
                instalments.c.due_date.in_(sorted(asked)),
            ),
        )
    ).all():  # fmt: skip
        schedule[lid].append(ledger.Instalment(number, due, amount, paid))
    paid_rows: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for lid, paid_at, created, amount in conn.execute(
        select(payments.c.loan_id, payments.c.paid_at, payments.c.created_at, payments.c.amount)
        .where(payments.c.loan_id.in_(ids))
    ).all():  # fmt: skip
        paid_rows[lid].append((as_utc(paid_at), as_utc(created), amount))
    out: dict[int, LoanState] = {}
    for lid, (cid, snap) in heads.items():
        snapshot = as_utc(snap) if snap is not None else None
        extra = ledger.countable_payments(
            [ledger.Payment(at, amount) for at, _, amount in paid_rows[lid]], snapshot, now
        )
        allocated, _ = ledger.allocate(schedule[lid], extra)
        out[lid] = LoanState(
            cid, allocated, ledger.position(allocated, today, grace_days), snapshot, paid_rows[lid]
        )
    return out
