"""Each loan's open schedule in three columns of `loans`, kept by the import.

    open_amount       what is left to pay of its open instalments (0 when none is open)
    first_open_due    the due date of its first open instalment, by due date then number
    first_open_left   what is left to pay of that instalment

A position needs per loan the overdue sum, the upcoming sum and the next instalment. Summing
every open instalment for them was most of a large plan's time (a million loans, 5.7 M open
instalments: 4.3 s of a 19.5 s plan on SQLite). With these columns a loan none of whose
instalments is late yet needs no instalment read at all; only the loans with a late one are summed
instalment by instalment (`ledger_reads.open_summary`).

The import is the only writer of instalments. It notes every loan whose instalments it writes
(`track`) and, before it commits, refreshes those loans (`refresh`), in its own transaction: the
columns are never out of step with the instalments another reader can see. Migration 0011 filled
them for the loans already there (with the same statements, over every loan).
"""

from __future__ import annotations

import polars as pl

from cuikuan.store.bulk import Bulk

TOUCHED = "_import_loans"


def create_touched(bulk: Bulk) -> None:
    """The temporary table of the loans this import wrote instalments of."""
    kind = "INTEGER" if bulk.sqlite else "bigint"
    bulk.one(f"CREATE TEMP TABLE {TOUCHED} (loan_id {kind} PRIMARY KEY)")


def track(bulk: Bulk, loan_ids: pl.Series) -> None:
    """Note `loan_ids` (database ids) as loans whose schedule this import changed."""
    bulk.many(
        f"INSERT INTO {TOUCHED} (loan_id) VALUES ({bulk.placeholders(1)}) ON CONFLICT DO NOTHING",
        bulk.rows(loan_ids.unique().sort().to_frame()),
    )


def refresh(bulk: Bulk) -> None:
    """The schedule columns of every tracked loan, from its instalments as they now are."""
    for sql in statements(bulk.sqlite, f"SELECT loan_id FROM {TOUCHED}"):
        bulk.one(sql)


def statements(sqlite: bool, loans: str | None) -> list[str]:
    """SQL that sets the schedule columns of the loans whose ids `loans` (a query) gives, or of
    every loan (None). A row is written only if a value changes (a re-import moves nothing)."""
    among = f"loan_id IN ({loans})" if loans else ""
    which = f"id IN ({loans}) AND " if loans else ""
    remaining = "amount_due - amount_paid"
    is_open = "amount_paid < amount_due"
    # The loans no instalment of which is open any more.
    closed = (
        "UPDATE loans SET open_amount = 0, first_open_due = NULL, first_open_left = 0 "
        f"WHERE {which}first_open_due IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM instalments i WHERE i.loan_id = loans.id AND i.{is_open})"
    )
    filter_ = f"WHERE {is_open}" + (f" AND {among}" if among else "")
    if sqlite:
        # With one min() in a query SQLite takes the bare columns from the row that holds the
        # minimum, on a tie the first in scan order: the key's (loan_id, number). So the first
        # open instalment by due date, then number (tested with ties and numbers out of order).
        summed = (
            f"SELECT loan_id, sum({remaining}) AS total, min(due_date) AS first, "
            f"{remaining} AS rest FROM instalments {filter_} GROUP BY loan_id"
        )
        differs = "IS NOT"
    else:
        summed = (
            f"SELECT DISTINCT ON (loan_id) loan_id, sum({remaining}) OVER (PARTITION BY loan_id) "
            f"AS total, due_date AS first, {remaining} AS rest FROM instalments {filter_} "
            "ORDER BY loan_id, due_date, number"
        )
        differs = "IS DISTINCT FROM"
    opened = (
        "UPDATE loans SET open_amount = s.total, first_open_due = s.first, "
        f"first_open_left = s.rest FROM ({summed}) AS s WHERE loans.id = s.loan_id AND "
        f"(loans.open_amount {differs} s.total OR loans.first_open_due {differs} s.first "
        f"OR loans.first_open_left {differs} s.rest)"
    )
    return [closed, opened]
