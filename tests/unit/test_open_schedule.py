"""`ledger_frame.open_schedule` (what the import stores per loan) against the plain rule, over
random instalments: numbers out of date order, several due the same day, repeated rows, loans
fully paid."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from cuikuan.domain.ledger_frame import open_schedule

START = date(2026, 1, 1)

instalment = st.tuples(
    st.sampled_from(["L1", "L2", "L3"]),
    st.integers(1, 6),  # number
    st.integers(0, 4),  # due, days after START: often the same day
    st.integers(1, 10_000),  # amount due
    st.integers(0, 10_000),  # amount paid (capped at the amount due below)
)


def _plain(rows: list[tuple[str, int, int, int, int]]) -> dict[str, tuple[int, date | None, int]]:
    once = {(loan, number): (due, owed, paid) for loan, number, due, owed, paid in rows}
    out: dict[str, tuple[int, date | None, int]] = {}
    for loan in {loan for loan, *_ in rows}:
        open_ = sorted(
            (START + timedelta(days=due), number, owed - paid)
            for (lid, number), (due, owed, paid) in once.items()
            if lid == loan and paid < owed
        )
        if open_:
            out[loan] = (sum(r[2] for r in open_), open_[0][0], open_[0][2])
        else:
            out[loan] = (0, None, 0)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(instalment, min_size=1, max_size=30))
def test_open_schedule_is_the_first_open_instalment_by_due_date_then_number(
    drawn: list[tuple[str, int, int, int, int]],
) -> None:
    # A repeated instalment repeats its values (the import refuses differing repeats first).
    first: dict[tuple[str, int], tuple[int, int, int]] = {}
    rows = []
    for loan, number, day, amount, paying in drawn:
        due, owed, paid = first.setdefault((loan, number), (day, amount, min(paying, amount)))
        rows.append((loan, number, due, owed, paid))
    frame = pl.DataFrame(
        {
            "loan_id": [r[0] for r in rows],
            "number": [r[1] for r in rows],
            "due_date": [START + timedelta(days=r[2]) for r in rows],
            "amount_due": [r[3] for r in rows],
            "amount_paid": [r[4] for r in rows],
        }
    )
    got = {
        r["loan_id"]: (r["open_amount"], r["first_open_due"], r["first_open_left"])
        for r in open_schedule(frame).iter_rows(named=True)
    }
    assert got == _plain(rows)
