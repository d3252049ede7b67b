"""Urgency goes by days past due first: a borrower 70 days late on one loan is not reminded
about a small loan due in three days, and a shared number's one slot goes to the most overdue."""

from __future__ import annotations

import polars as pl

from cuikuan.domain.decide import ordered
from cuikuan.domain.planning import pick_loans

EVALUATED = pl.DataFrame(
    {
        "customer_id": [1, 1, 2],
        "loan_id": [10, 11, 20],
        "step_index": [0, 5, 3],  # 0: three days before due; 5: M3
        "dpd": [0, 70, 10],
        "outstanding": [50_000, 900_000, 1_000],
    }
)


def test_the_message_speaks_of_the_most_overdue_loan() -> None:
    picked = pick_loans(EVALUATED)
    assert picked.filter(pl.col("customer_id") == 1)["loan_id"].item() == 11
    by_strategy = pick_loans(EVALUATED, "strategy")
    assert by_strategy.filter(pl.col("customer_id") == 1)["loan_id"].item() == 10


def test_the_most_overdue_is_decided_first() -> None:
    rows = pick_loans(EVALUATED).with_columns(pl.col("customer_id"))
    assert ordered(rows)["customer_id"].to_list() == [1, 2]
    assert ordered(rows, "strategy")["customer_id"].to_list() == [2, 1]
