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

from sqlalchemy import Connection

from cuikuan.domain import ledger
from cuikuan.store.bulk import Bulk


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
    # Read as plain tuples from the driver: a round re-checks thousands of loans, and row
    # objects with their type processing were most of the time.
    bulk = Bulk(conn)
    param, wanted = bulk.among_value(ids), bulk.among_sql("loan_id")
    heads = {
        lid: (cid, bulk.moment(snap))
        for lid, cid, snap in bulk.fetch(
            f"SELECT id, customer_id, paid_snapshot_at FROM loans WHERE {bulk.among_sql('id')}",
            (param,),
        )
    }
    days = sorted(set(asked))
    on_dates, dates = bulk.among("due_date", [d.isoformat() for d in days] if bulk.sqlite else days)
    schedule: dict[int, list[ledger.Instalment]] = defaultdict(list)
    # The tightest loop of the re-check (every unpaid instalment of the round's loans): the
    # date reader is chosen once, not per row.
    day, make = (date.fromisoformat if bulk.sqlite else _as_is), ledger.Instalment
    for lid, number, due, amount, paid in bulk.fetch(
        "SELECT loan_id, number, due_date, amount_due, amount_paid FROM instalments"
        f" WHERE {wanted} AND (amount_paid < amount_due OR {on_dates})",
        (param, dates),
    ):
        schedule[lid].append(make(number, day(due), amount, paid))
    paid_rows: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for lid, paid_at, created, amount in bulk.fetch(
        f"SELECT loan_id, paid_at, created_at, amount FROM payments WHERE {wanted}", (param,)
    ):
        paid_rows[lid].append((bulk.moment(paid_at), bulk.moment(created), amount))  # type: ignore[arg-type]
    out: dict[int, LoanState] = {}
    for lid, (cid, snapshot) in heads.items():
        extra = ledger.countable_payments(
            [ledger.Payment(at, amount) for at, _, amount in paid_rows[lid]], snapshot, now
        )
        allocated, _ = ledger.allocate(schedule[lid], extra)
        out[lid] = LoanState(
            cid, allocated, ledger.position(allocated, today, grace_days), snapshot, paid_rows[lid]
        )
    return out


def _as_is(value: date) -> date:
    return value
