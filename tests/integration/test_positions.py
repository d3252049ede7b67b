"""Loan positions summed by the database (loans with no payment to allocate) equal positions
computed instalment by instalment, on both databases: dates before, on and after due dates,
grace days, partial and over-payments after the snapshot, loans paid off."""

from __future__ import annotations

import csv
import random
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from cuikuan.services.importer import import_file
from cuikuan.services.portfolio import loan_positions
from cuikuan.settings import Settings
from cuikuan.store.schema import instalments, loans
from tests.helpers import RULES
from tests.integration.conftest import DAY, build_book


@pytest.fixture
def paid_book(tmp_path: Path, db_url: str) -> tuple[Settings, Engine]:
    settings, engine = build_book(tmp_path, db_url, 300, 5)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(loans.c.external_id).order_by(loans.c.id))]
        owed = dict(
            conn.execute(
                select(loans.c.external_id, instalments.c.amount_due - instalments.c.amount_paid)
                .join(instalments, instalments.c.loan_id == loans.c.id)
                .where(instalments.c.number == 1)
            ).all()
        )
    rng = random.Random(7)
    lines = ["还款流水号,借据号,还款时间,还款金额"]
    for n, loan in enumerate(rng.sample(ids, len(ids) // 3)):
        # Some pay part of one instalment, some several, some more than they owe.
        share = rng.choice([0.3, 1.0, 2.5, 40.0])
        amount = max(1, int(max(owed.get(loan, 10000), 100) * share)) / 100
        day = DAY + timedelta(days=rng.randint(-20, 20))
        lines.append(f"P{n},{loan},{day} 10:00,{amount:.2f}")
    pays = tmp_path / "payments.csv"
    pays.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_file(engine, pays, RULES)
    return settings, engine


@pytest.mark.parametrize("grace", [0, 3])
def test_summed_positions_equal_the_exact_ones(
    paid_book: tuple[Settings, Engine], grace: int
) -> None:
    settings, engine = paid_book
    settings = settings.model_copy(
        update={"ledger": settings.ledger.model_copy(update={"grace_days": grace})}
    )
    for offset in (-40, -1, 0, 1, 5, 31, 95):
        day = DAY + timedelta(days=offset)
        exact = loan_positions(engine, day, settings, summed=False).sort("loan_id")
        summed = loan_positions(engine, day, settings, summed=True).sort("loan_id")
        assert summed.select(exact.columns).equals(exact), day
        assert exact.filter(pl.col("dpd") > 0).height > 0
    assert not exact["paid_off"].all()


@pytest.mark.parametrize("late", [False, True])
def test_summed_next_instalment_follows_due_date_then_number(
    paid_book: tuple[Settings, Engine], tmp_path: Path, late: bool
) -> None:
    """Instalments numbered out of date order and two due the same day, written by a re-import:
    the next one is the earliest due, and of those the lowest number, both ways (SQLite takes
    it from the row it finds holding the minimum, which must be the first in key order). Once
    from the schedule the import keeps, once (`late`: an earlier one is overdue) from the sums
    of a late loan's upcoming instalments."""
    settings, engine = paid_book
    with engine.connect() as conn:
        loan = conn.execute(
            select(loans.c.external_id)
            .join(instalments, instalments.c.loan_id == loans.c.id)
            .group_by(loans.c.external_id)
            .having(func.count() >= 5)
            .order_by(loans.c.external_id)
            .limit(1)
        ).scalar_one()
    later = DAY + timedelta(days=60)
    # number 2 due after 3 and 4, which share a day; 5 the day after that; the rest long after.
    changes = {2: (later + timedelta(days=9), "7.00"), 3: (later, "5.00"), 4: (later, "3.00"),
               5: (later + timedelta(days=1), "9.00")}  # fmt: skip
    changes[1] = (
        (DAY - timedelta(days=10), "6.00") if late else (later + timedelta(days=30), "1.00")
    )
    with (tmp_path / "ledger.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    at = {
        name: header.index(name) for name in ("借据号", "期数", "应还日期", "应还金额", "已还金额")
    }
    for row in rows[1:]:
        if row[at["借据号"]] != loan:
            continue
        number = int(row[at["期数"]])
        due, amount = changes.get(number, (later + timedelta(days=100 + number), "2.00"))
        row[at["应还日期"]], row[at["应还金额"]], row[at["已还金额"]] = str(due), amount, "0.00"
    changed = tmp_path / "ledger-changed.csv"
    with changed.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    import_file(engine, changed, RULES)
    exact = loan_positions(engine, DAY, settings, summed=False).filter(
        pl.col("external_id") == loan
    )
    summed = loan_positions(engine, DAY, settings, summed=True).filter(
        pl.col("external_id") == loan
    )
    assert summed.select(exact.columns).equals(exact)
    got = exact.row(0, named=True)
    assert (got["next_due_date"], got["next_due_amount"]) == (later, 500)
    assert (got["overdue_amount"], got["dpd"]) == ((600, 10) if late else (0, 0))


def test_positions_of_a_range_of_customers_are_theirs_in_the_whole_book(
    paid_book: tuple[Settings, Engine],
) -> None:
    settings, engine = paid_book
    for summed in (False, True):
        whole = loan_positions(engine, DAY, settings, summed=summed)
        ids = sorted(set(whole["customer_id"].to_list()))
        low, high = ids[len(ids) // 3], ids[2 * len(ids) // 3]
        part = loan_positions(engine, DAY, settings, summed=summed, scope=(low, high))
        expected = whole.filter(pl.col("customer_id").is_between(low, high, closed="left"))
        assert part.height > 0
        assert part.sort("loan_id").equals(expected.sort("loan_id"))
        lean = loan_positions(engine, DAY, settings, summed=summed, scope=(low, high), lean=True)
        assert lean.sort("loan_id").equals(part.drop("external_id", "currency").sort("loan_id"))
        # Loans with no open instalment left out: what is still open is all there.
        opened = loan_positions(engine, DAY, settings, summed=summed, open_only=True)
        still = whole.filter(~pl.col("paid_off")).sort("loan_id")
        assert opened.filter(~pl.col("paid_off")).sort("loan_id").equals(still)
        assert opened.height < whole.height


def test_the_portfolio_a_page_reuses_is_never_older_than_the_ledger(
    db_url: str, tmp_path: Path
) -> None:
    """portfolio_now answers from memory only while the ledger is unchanged: after a payments
    import the next answer is the fresh portfolio again (switching the ledger version out of
    its key makes this fail)."""
    from datetime import UTC, datetime, timedelta

    from cuikuan.services.importer import import_file
    from cuikuan.services.portfolio import loan_positions, portfolio, portfolio_now
    from tests.helpers import RULES, write_csv
    from tests.integration.conftest import DAY, build_book

    settings, engine = build_book(tmp_path, db_url, 400, 11)
    first = portfolio_now(engine, DAY, settings)
    assert portfolio_now(engine, DAY, settings) is first  # from memory
    late = (
        loan_positions(engine, DAY, settings)
        .filter(pl.col("overdue_amount") > 0)
        .sort("loan_id")
        .head(20)
    )
    at = datetime(2026, 11, 30, 2, tzinfo=UTC)
    rows = [[f"P{i}", r["external_id"], "2026-11-30 09:00:00", f"{r['overdue_amount'] / 100:.2f}"]
            for i, r in enumerate(late.iter_rows(named=True))]  # fmt: skip
    file = write_csv(tmp_path / "pay.csv", ["还款流水号", "借据号", "还款时间", "还款金额"], rows)
    import_file(engine, file, RULES, now=at + timedelta(minutes=10))
    again = portfolio_now(engine, DAY, settings)
    fresh = portfolio(engine, DAY, settings)
    assert again is not first
    assert again.buckets.equals(fresh.buckets) and not again.buckets.equals(first.buckets)
    assert portfolio_now(engine, DAY + timedelta(days=1), settings).as_of == DAY + timedelta(days=1)


@pytest.mark.parametrize("grace", [0, 3])
def test_a_rounds_loans_summed_equal_them_allocated_instalment_by_instalment(
    paid_book: tuple[Settings, Engine], grace: int
) -> None:
    """The send-time re-check's loans (store.loans_now): summed from their open schedules where
    nothing is to be allocated, equal to every loan allocated instalment by instalment (the row
    rules), positions and the instalments due on the asked dates alike; and both equal the
    portfolio's positions on that day. Days before, on and after due dates; payments before and
    after the cut-off."""
    from cuikuan.domain.ledger import Payment, countable_payments
    from cuikuan.services.portfolio import as_of_cutoff
    from cuikuan.store.loans_now import loans_at

    settings, engine = paid_book
    settings = settings.model_copy(
        update={"ledger": settings.ledger.model_copy(update={"grace_days": grace})}
    )
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(loans.c.id).order_by(loans.c.id))]
        dues = sorted({r[0] for r in conn.execute(select(instalments.c.due_date).distinct())})
    allocated_somewhere = False
    for offset in (-40, -1, 0, 1, 5, 31, 95):
        day = DAY + timedelta(days=offset)
        now = as_of_cutoff(day, settings.defaults.timezone)
        asked = [d for d in dues if abs((d - day).days) <= 10][:6]
        with engine.connect() as conn:
            summed = loans_at(conn, ids, now, day, grace, asked)
            by_rows = loans_at(conn, ids, now, day, grace, asked, by_rows=True)
        assert summed == by_rows, day
        assert any(s.instalments for s in summed.values()) or not asked
        exact = loan_positions(engine, day, settings, summed=False)
        for row in exact.iter_rows(named=True):
            position = summed[row["loan_id"]].position
            assert (position.outstanding, position.overdue_amount, position.dpd,
                    position.next_due_date, position.next_due_amount, position.paid_off) == (
                row["outstanding"], row["overdue_amount"], row["dpd"], row["next_due_date"],
                row["next_due_amount"], row["paid_off"],
            ), (day, row)  # fmt: skip
        # Some loans of the round had payments to allocate: both paths ran.
        allocated_somewhere |= any(
            countable_payments([Payment(at, amount) for at, _, amount in s.payments],
                               s.snapshot_at, now) > 0
            for s in summed.values()
        )  # fmt: skip
    assert allocated_somewhere
    assert len(summed) == len(ids)
