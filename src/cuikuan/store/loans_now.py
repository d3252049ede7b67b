"""Loans as they stand at a moment, read for a few loans (never the whole book).

    found = loans_at(conn, [12, 15], now, today, grace_days=3, asked=[date(2026, 12, 5)])
    found[12].position.overdue_amount, found[12].payments, found[12].instalments

A loan with no payment to allocate on top of its instalment snapshot (nearly every loan) gets its
position as the plan gets it: from its open schedule, summed by the database
(`ledger_reads.open_summary`, `ledger_frame.open_summary_positions`); reading every open
instalment of a round's thousands of loans into Python was half of the send-time re-check. A loan
with payments to allocate goes by domain.ledger's row rules (allocation, then position), the
reference both are tested against; `by_rows` sends every loan that way. `instalments` are those
due on the `asked` dates only, with what is allocated to them.
Used by the send-time re-check and by the tasks that close themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple

import polars as pl
from sqlalchemy import Connection

from cuikuan.domain import ledger, ledger_frame
from cuikuan.store import ledger_reads
from cuikuan.store.bulk import Bulk

PAID_OFF = ledger.position([], date.min)


class LoanState(NamedTuple):  # thousands a dispatch round: a named tuple is cheap to make
    customer_id: int
    instalments: Sequence[ledger.Instalment]  # due on the asked dates, payments allocated
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
    *,
    by_rows: bool = False,
) -> dict[int, LoanState]:
    ids = sorted(set(loan_ids))
    if not ids:
        return {}
    bulk = Bulk(conn)
    heads = ledger_reads.loan_schedules(conn, pl.Series(ids, dtype=pl.Int64))
    snapshots = dict(
        zip(heads["loan_id"].to_list(), heads["paid_snapshot_at"].to_list(), strict=True)
    )
    paid_rows = _payments(bulk, ids)
    extra = {
        lid: ledger.countable_payments(
            [ledger.Payment(at, amount) for at, _, amount in rows], snapshots[lid], now
        )
        for lid, rows in paid_rows.items()
        if lid in snapshots
    }
    allocating = sorted(lid for lid in snapshots if by_rows or extra.get(lid, 0) > 0)
    days = sorted(set(asked))
    positions = _summed(conn, heads.filter(~pl.col("loan_id").is_in(allocating)), today, grace_days)
    schedule = _instalments(bulk, ids, allocating, days)
    on_asked: dict[int, list[ledger.Instalment]] = {}
    for lid in allocating:
        allocated, _ = ledger.allocate(schedule.get(lid, []), extra.get(lid, 0))
        positions[lid] = ledger.position(allocated, today, grace_days)
        on_asked[lid] = [i for i in allocated if i.due_date in days]
    customers = dict(zip(heads["loan_id"].to_list(), heads["customer_id"].to_list(), strict=True))
    return {
        lid: LoanState(
            customers[lid],
            on_asked[lid] if lid in on_asked else ledger.in_payment_order(schedule.get(lid, [])),
            positions.get(lid, PAID_OFF),
            snapshots[lid],
            paid_rows.get(lid, []),
        )
        for lid in ids
        if lid in snapshots
    }


def _summed(
    conn: Connection, heads: pl.DataFrame, today: date, grace_days: int
) -> dict[int, ledger.LoanPosition]:
    """Positions of loans with nothing to allocate, from their open schedules (as the plan's);
    a loan with no open instalment is left out (paid off)."""
    if heads.is_empty():
        return {}
    late_before = today - timedelta(days=grace_days)
    summary = ledger_reads.open_summary(conn, heads, late_before, small=True)
    frame = ledger_frame.open_summary_positions(summary.lazy(), today).collect()
    fields = ("loan_id", *ledger.LoanPosition._fields)
    make = ledger.LoanPosition
    return {row[0]: make(*row[1:]) for row in frame.select(fields).iter_rows()}


def _payments(bulk: Bulk, ids: list[int]) -> dict[int, list[tuple[datetime, datetime, int]]]:
    found: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for lid, paid_at, created, amount in bulk.fetch(
        f"SELECT loan_id, paid_at, created_at, amount FROM payments WHERE {bulk.among_sql('loan_id')}",
        (bulk.among_value(ids),),
    ):
        found[lid].append((bulk.moment(paid_at), bulk.moment(created), amount))  # type: ignore[arg-type]
    return found


def _instalments(
    bulk: Bulk, ids: list[int], allocating: list[int], days: list[date]
) -> dict[int, list[ledger.Instalment]]:
    """Instalments due on `days` of the loans of `ids`, and every open one of the loans of
    `allocating` (a fully paid instalment changes no allocation and no position)."""
    wanted, on_days = bulk.among_sql("loan_id"), bulk.among_sql("due_date")
    days_value = bulk.among_value([d.isoformat() for d in days] if bulk.sqlite else days)
    found: dict[int, list[ledger.Instalment]] = defaultdict(list)
    # The date reader is chosen once, not per row.
    day, make = (date.fromisoformat if bulk.sqlite else _as_is), ledger.Instalment
    summed = sorted(set(ids) - set(allocating))
    queries = [(f"{wanted} AND {on_days}", (bulk.among_value(summed), days_value))] if days else []
    if allocating:
        queries.append((
            f"{wanted} AND (amount_paid < amount_due OR {on_days})",
            (bulk.among_value(allocating), days_value),
        ))  # fmt: skip
    for condition, params in queries:
        for lid, number, due, amount, paid in bulk.fetch(
            "SELECT loan_id, number, due_date, amount_due, amount_paid FROM instalments"
            f" WHERE {condition}",
            params,
        ):
            found[lid].append(make(number, day(due), amount, paid))
    return found


def _as_is(value: date) -> date:
    return value
