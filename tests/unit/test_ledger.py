from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from cuikuan.domain import ledger_frame
from cuikuan.domain.ledger import (
    BucketEdge,
    Instalment,
    Payment,
    allocate,
    bucket_for,
    countable_payments,
    position,
)

EDGES = [
    BucketEdge("current", 0),
    BucketEdge("M1", 30),
    BucketEdge("M2", 60),
    BucketEdge("M3", 90),
    BucketEdge("M3+", None),
]
START = date(2026, 1, 15)


@st.composite
def schedules(draw: st.DrawFn) -> list[Instalment]:
    n = draw(st.integers(1, 12))
    out = []
    for k in range(n):
        due = draw(st.integers(0, 10**7))
        paid = draw(st.one_of(st.just(0), st.just(due), st.integers(0, due)))
        out.append(
            Instalment(k + 1, START + timedelta(days=30 * k + draw(st.integers(0, 3))), due, paid)
        )
    return out


@given(schedules(), st.integers(0, 10**8))
def test_allocation_conserves_money(schedule: list[Instalment], amount: int) -> None:
    after, surplus = allocate(schedule, amount)
    applied = sum(i.amount_paid for i in after) - sum(i.amount_paid for i in schedule)
    assert applied + surplus == amount
    assert all(
        i.amount_paid <= i.amount_due or i.amount_paid == j.amount_paid
        for i, j in zip(after, sorted(schedule, key=lambda x: (x.due_date, x.number)), strict=True)
    )


@given(schedules(), st.integers(0, 10**8))
def test_allocation_pays_the_oldest_instalment_first(
    schedule: list[Instalment], amount: int
) -> None:
    after, _ = allocate(schedule, amount)
    # Once an instalment is left unpaid, no later one received anything from this payment.
    before = {i.number: i.amount_paid for i in schedule}
    left_open = False
    for inst in after:
        if left_open:
            assert inst.amount_paid == before[inst.number]
        if inst.remaining > 0:
            left_open = True


def test_partial_payment_goes_to_the_oldest_unpaid_instalment() -> None:
    schedule = [
        Instalment(1, date(2026, 1, 1), 1000, 400),
        Instalment(2, date(2026, 2, 1), 1000),
        Instalment(3, date(2026, 3, 1), 1000),
    ]
    after, surplus = allocate(schedule, 900)
    assert [i.amount_paid for i in after] == [1000, 300, 0]
    assert surplus == 0


def test_dpd_counts_from_the_oldest_unpaid_due_date() -> None:
    schedule = [
        Instalment(1, date(2026, 9, 1), 1000, 1000),
        Instalment(2, date(2026, 10, 1), 1000, 200),
        Instalment(3, date(2026, 11, 1), 1000),
    ]
    pos = position(schedule, date(2026, 11, 29))
    assert pos.dpd == 59
    assert pos.overdue_amount == 1800
    assert pos.outstanding == 1800
    assert bucket_for(pos.dpd, EDGES) == "M2"


def test_grace_days_delay_overdue_but_dpd_counts_from_due_date() -> None:
    schedule = [Instalment(1, date(2026, 11, 25), 1000)]
    assert position(schedule, date(2026, 11, 28), grace_days=3).dpd == 0
    assert position(schedule, date(2026, 11, 29), grace_days=3).dpd == 4


def test_before_the_due_date_there_are_days_to_due() -> None:
    pos = position([Instalment(1, date(2026, 12, 2), 1000)], date(2026, 11, 29))
    assert (pos.dpd, pos.days_to_due, pos.next_due_amount) == (0, 3, 1000)


def test_payments_inside_the_snapshot_are_not_counted_again() -> None:
    snap = datetime(2026, 11, 28, 16, tzinfo=UTC)
    pays = [
        Payment(snap - timedelta(hours=1), 500),
        Payment(snap + timedelta(hours=1), 300),
        Payment(snap + timedelta(days=3), 999),
    ]
    assert countable_payments(pays, snap, cutoff=snap + timedelta(days=1)) == 300
    assert countable_payments(pays, None, cutoff=snap + timedelta(days=1)) == 800


@given(st.integers(-5, 400))
def test_buckets_follow_their_edges(dpd: int) -> None:
    name = bucket_for(max(dpd, 0), EDGES)
    frame = pl.DataFrame({"dpd": [max(dpd, 0)]}).select(
        ledger_frame.bucket_expr(pl.col("dpd"), EDGES)
    )
    assert frame.item() == name


@settings(max_examples=60)
@given(
    st.lists(st.tuples(schedules(), st.integers(0, 5 * 10**7)), min_size=1, max_size=8),
    st.integers(0, 500),
    st.integers(0, 5),
)
def test_portfolio_computation_matches_the_per_loan_rules(
    loans: list[tuple[list[Instalment], int]], offset: int, grace: int
) -> None:
    as_of = START + timedelta(days=offset)
    inst_rows, extra_rows = [], []
    for loan_id, (schedule, extra) in enumerate(loans):
        inst_rows += [
            (loan_id, i.number, i.due_date, i.amount_due, i.amount_paid) for i in schedule
        ]
        extra_rows.append((loan_id, extra))
    inst = pl.DataFrame(
        inst_rows,
        schema=["loan_id", "number", "due_date", "amount_due", "amount_paid"],
        orient="row",
    )
    extra = pl.DataFrame(extra_rows, schema=["loan_id", "extra"], orient="row")
    got = {
        r["loan_id"]: r
        for r in ledger_frame.loan_positions(inst.lazy(), extra.lazy(), as_of, grace)
        .collect()
        .iter_rows(named=True)
    }
    for loan_id, (schedule, amount) in enumerate(loans):
        expected = position(allocate(schedule, amount)[0], as_of, grace)
        row = got[loan_id]
        assert (
            row["dpd"],
            row["days_to_due"],
            row["outstanding"],
            row["overdue_amount"],
            row["next_due_date"],
            row["next_due_amount"],
            row["paid_off"],
        ) == (
            expected.dpd,
            expected.days_to_due,
            expected.outstanding,
            expected.overdue_amount,
            expected.next_due_date,
            expected.next_due_amount,
            expected.paid_off,
        )


@settings(max_examples=40)
@given(
    st.lists(st.tuples(schedules(), st.integers(0, 5 * 10**7)), min_size=1, max_size=6),
    st.integers(0, 400),
)
def test_leaving_out_fully_paid_instalments_changes_no_position(
    loans: list[tuple[list[Instalment], int]], offset: int
) -> None:
    as_of = START + timedelta(days=offset)
    rows = [
        (lid, i.number, i.due_date, i.amount_due, i.amount_paid)
        for lid, (sched, _) in enumerate(loans)
        for i in sched
    ]
    inst = pl.DataFrame(
        rows, schema=["loan_id", "number", "due_date", "amount_due", "amount_paid"], orient="row"
    )
    extra = pl.DataFrame(
        [(lid, e) for lid, (_, e) in enumerate(loans)], schema=["loan_id", "extra"], orient="row"
    )
    full = ledger_frame.loan_positions(inst.lazy(), extra.lazy(), as_of).collect().sort("loan_id")
    open_ = (
        ledger_frame.loan_positions(
            inst.filter(pl.col("amount_paid") < pl.col("amount_due")).lazy(), extra.lazy(), as_of
        )
        .collect()
        .sort("loan_id")
    )
    still_open = full.filter(pl.col("loan_id").is_in(open_["loan_id"].to_list()))
    assert still_open.equals(open_.select(still_open.columns))
    assert full.filter(~pl.col("loan_id").is_in(open_["loan_id"].to_list()))["paid_off"].all()


@given(schedules(), st.integers(0, 5 * 10**7), st.integers(0, 400), st.integers(0, 11))
def test_the_row_rules_need_no_fully_paid_instalment_but_those_asked_about(
    schedule: list[Instalment], extra: int, offset: int, asked_index: int
) -> None:
    """What the send-time re-check reads (dispatch.recheck): open instalments, and every
    instalment due on a date a row asks about, give the same position and the same answer
    about that date as the whole schedule."""
    as_of = START + timedelta(days=offset)
    asked = schedule[asked_index % len(schedule)].due_date
    read = [i for i in schedule if i.amount_paid < i.amount_due or i.due_date == asked]
    whole, whole_left = allocate(schedule, extra)
    part, part_left = allocate(read, extra)
    assert part_left == whole_left
    assert position(part, as_of, 3) == position(whole, as_of, 3)
    assert [i for i in part if i.due_date == asked] == [i for i in whole if i.due_date == asked]


@given(schedules(), st.integers(0, 400), st.integers(0, 5))
def test_position_is_the_definition(schedule: list[Instalment], offset: int, grace: int) -> None:
    """position() in one pass equals the glossary's definitions written out one by one."""
    as_of = START + timedelta(days=offset)
    ordered = sorted(schedule, key=lambda i: (i.due_date, i.number))
    late = [i for i in ordered if i.remaining > 0 and (as_of - i.due_date).days > grace]
    upcoming = [i for i in ordered if i.remaining > 0 and i not in late]
    got = position(schedule, as_of, grace)
    assert got.dpd == ((as_of - late[0].due_date).days if late else 0)
    assert got.overdue_amount == sum(i.remaining for i in late)
    assert got.outstanding == sum(i.remaining for i in ordered)
    assert got.next_due_date == (upcoming[0].due_date if upcoming else None)
    assert got.next_due_amount == (upcoming[0].remaining if upcoming else 0)
    assert got.paid_off == (got.outstanding == 0)
