"""The rules of `ledger.py`, set-at-a-time over a whole portfolio with Polars.

    positions = loan_positions(instalments, extra, as_of=date(2026, 11, 29), grace_days=0)

`instalments` has loan_id, number, due_date, amount_due, amount_paid; `extra` has loan_id and
extra (payments to allocate on top of the snapshot). Property tests hold this equal to ledger.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import polars as pl

from cuikuan.domain.ledger import BucketEdge


def countable_payments(
    payments: pl.LazyFrame, loans: pl.LazyFrame, cutoff: datetime
) -> pl.LazyFrame:
    """Per loan, the sum of payments after its snapshot and before the cut-off (loan_id, extra).

    `payments`: loan_id, paid_at, amount; `loans`: loan_id, paid_snapshot_at (both UTC).
    """
    return (
        payments.join(loans.select("loan_id", "paid_snapshot_at"), on="loan_id", how="left")
        .filter(
            (pl.col("paid_at") < cutoff)
            & (
                pl.col("paid_snapshot_at").is_null()
                | (pl.col("paid_at") > pl.col("paid_snapshot_at"))
            )
        )
        .group_by("loan_id")
        .agg(pl.col("amount").sum().alias("extra"))
    )


def allocated(instalments: pl.LazyFrame, extra: pl.LazyFrame) -> pl.LazyFrame:
    """Instalments with `remaining` after allocating each loan's extra oldest-first."""
    base = (pl.col("amount_due") - pl.col("amount_paid")).clip(lower_bound=0)
    return (
        instalments.join(extra, on="loan_id", how="left")
        .with_columns(pl.col("extra").fill_null(0), base.alias("_open"))
        .sort("loan_id", "due_date", "number")
        .with_columns(
            (pl.col("_open").cum_sum().over("loan_id") - pl.col("_open")).alias("_before")
        )
        .with_columns(
            (pl.col("extra") - pl.col("_before")).clip(0, pl.col("_open")).alias("_applied")
        )
        .with_columns((pl.col("_open") - pl.col("_applied")).alias("remaining"))
        .drop("_open", "_before", "_applied", "extra")
    )


def loan_positions(
    instalments: pl.LazyFrame, extra: pl.LazyFrame, as_of: date, grace_days: int = 0
) -> pl.LazyFrame:
    """One row per loan: dpd, days_to_due, outstanding, overdue_amount, next_due_*, paid_off."""
    open_ = pl.col("remaining") > 0
    late = open_ & ((pl.lit(as_of) - pl.col("due_date")).dt.total_days() > grace_days)
    upcoming = open_ & ~late
    rows = allocated(instalments, extra).with_columns(late.alias("_late"), upcoming.alias("_up"))
    return (
        rows.group_by("loan_id")
        .agg(
            pl.col("remaining").sum().alias("outstanding"),
            pl.col("remaining").filter(pl.col("_late")).sum().alias("overdue_amount"),
            pl.col("due_date").filter(pl.col("_late")).min().alias("_first_late"),
            pl.col("due_date").filter(pl.col("_up")).first().alias("next_due_date"),
            pl.col("remaining").filter(pl.col("_up")).first().alias("next_due_amount"),
        )
        .with_columns(
            (pl.lit(as_of) - pl.col("_first_late")).dt.total_days().fill_null(0).alias("dpd"),
            (pl.col("next_due_date") - pl.lit(as_of)).dt.total_days().alias("days_to_due"),
            pl.col("next_due_amount").fill_null(0),
            (pl.col("outstanding") == 0).alias("paid_off"),
        )
        .drop("_first_late")
    )


def open_summary_positions(summary: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """`loan_positions` from per-loan sums (store.ledger_reads.open_summary) of loans with no
    payment to allocate: loan_id, outstanding, overdue_amount, first_late, next_due_date and
    next_due_amount (0 when nothing is due from the late line on)."""
    return summary.select(
        "loan_id",
        "outstanding",
        "overdue_amount",
        "next_due_date",
        "next_due_amount",
        (pl.lit(as_of) - pl.col("first_late")).dt.total_days().fill_null(0).alias("dpd"),
        (pl.col("outstanding") == 0).alias("paid_off"),
    ).with_columns(
        (pl.col("next_due_date") - pl.lit(as_of)).dt.total_days().alias("days_to_due"),
    )


def bucket_expr(dpd: pl.Expr, edges: Sequence[BucketEdge]) -> pl.Expr:
    expr: pl.Expr = pl.lit(edges[-1].name)
    for edge in reversed(edges[:-1]):
        expr = pl.when(dpd <= edge.max_dpd).then(pl.lit(edge.name)).otherwise(expr)
    return expr


def open_schedule(instalments: pl.DataFrame) -> pl.DataFrame:
    """Per loan of `instalments` (loan_id, number, due_date, amount_due, amount_paid; a repeated
    instalment counted once): open_amount, what is left of its open instalments, and
    first_open_due and first_open_left, its first open one by due date then number (null and
    0 when none is open). The columns store/schedules.py keeps per loan."""
    left = pl.col("amount_due") - pl.col("amount_paid")
    # Due date, then number, as one integer: the first open instalment is its arg_min, found
    # per loan without sorting the batch (a third faster at the import's 100,000 rows).
    order = pl.col("due_date").cast(pl.Int64) * (1 << 24) + pl.col("number")
    open_ = (
        instalments.unique(["loan_id", "number"], keep="first")
        .filter(left > 0)
        .group_by("loan_id")
        .agg(
            left.sum().alias("open_amount"),
            pl.col("due_date").get(order.arg_min()).alias("first_open_due"),
            left.get(order.arg_min()).alias("first_open_left"),
        )
    )
    return (
        instalments.select("loan_id")
        .unique()
        .join(open_, on="loan_id", how="left")
        .with_columns(pl.col("open_amount", "first_open_left").fill_null(0))
    )
