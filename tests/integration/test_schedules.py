"""Each loan's open schedule (store/schedules.py) stays equal to its instalments, on both
databases: after a first import, after a re-import that pays loans off, pays instalments, changes
amounts and dates and adds instalments, and when filled from scratch (the migration's way)."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, update

from cuikuan.services.importer import import_file
from cuikuan.store import ledger_reads, schedules
from cuikuan.store.schema import loans
from tests.helpers import RULES
from tests.integration.conftest import build_book


def _kept(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        frame = ledger_reads.loans(conn, lean=True, schedule=True)
    return frame.drop("customer_id").sort("loan_id")


def _from_instalments(engine: Engine) -> pl.DataFrame:
    """The schedule columns worked out here, instalment by instalment."""
    with engine.connect() as conn:
        every = ledger_reads.loans(conn, lean=True).select("loan_id")
        rows = ledger_reads.instalments(conn, open_only=True)
    first = (
        rows.sort("loan_id", "due_date", "number")
        .group_by("loan_id", maintain_order=True)
        .agg(
            (pl.col("amount_due") - pl.col("amount_paid")).sum().alias("open_amount"),
            pl.col("due_date").first().alias("first_open_due"),
            (pl.col("amount_due") - pl.col("amount_paid")).first().alias("first_open_left"),
        )
    )
    return (
        every.join(first, on="loan_id", how="left")
        .with_columns(pl.col("open_amount", "first_open_left").fill_null(0))
        .sort("loan_id")
    )


def _rewrite(ledger: Path, out: Path) -> dict[str, str]:
    """The ledger with some loans changed; what was done to which loan."""
    with ledger.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    at = {n: header.index(n) for n in ("借据号", "期数", "应还日期", "应还金额", "已还金额")}
    # Loans nothing of which is paid yet, so that every change below changes their schedule.
    paid = {r[at["借据号"]] for r in body if float(r[at["已还金额"]]) > 0}
    loan_ids = sorted({r[at["借据号"]] for r in body} - paid)
    done = {
        loan_ids[0]: "paid off",
        loan_ids[1]: "first instalment paid",
        loan_ids[2]: "amount and date changed",
        loan_ids[3]: "instalment added",
    }
    for row in body:
        loan, number = row[at["借据号"]], int(row[at["期数"]])
        if done.get(loan) == "paid off" or (
            done.get(loan) == "first instalment paid" and number == 1
        ):
            row[at["已还金额"]] = row[at["应还金额"]]
        elif done.get(loan) == "amount and date changed" and number == 2:
            row[at["应还金额"]], row[at["已还金额"]], row[at["应还日期"]] = (
                "1.00",
                "0.00",
                "2026-12-01",
            )
    last = max(
        (r for r in body if r[at["借据号"]] == loan_ids[3]), key=lambda r: int(r[at["期数"]])
    )
    extra = list(last)
    extra[at["期数"]] = str(int(last[at["期数"]]) + 1)
    extra[at["应还日期"]], extra[at["应还金额"]], extra[at["已还金额"]] = "2028-01-15", "12.34", "0"
    body.append(extra)
    with out.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return done


def test_the_import_keeps_each_loans_open_schedule(tmp_path: Path, db_url: str) -> None:
    _, engine = build_book(tmp_path, db_url, 150, 3)
    assert _kept(engine).equals(_from_instalments(engine))
    before = _kept(engine)
    done = _rewrite(tmp_path / "ledger.csv", tmp_path / "changed.csv")
    import_file(engine, tmp_path / "changed.csv", RULES)
    after = _kept(engine)
    assert after.equals(_from_instalments(engine))
    with engine.connect() as conn:
        ids = dict(
            conn.execute(loans.select().with_only_columns(loans.c.external_id, loans.c.id)).all()
        )
    changed = set(
        after.join(before, on="loan_id", suffix="_b")
        .filter(
            (pl.col("open_amount") != pl.col("open_amount_b"))
            | (pl.col("first_open_left") != pl.col("first_open_left_b"))
            | pl.col("first_open_due").ne_missing(pl.col("first_open_due_b"))
        )
        .get_column("loan_id")
        .to_list()
    )
    assert changed == {ids[loan] for loan in done}  # each change moved its loan, no other
    paid_off = after.filter(pl.col("loan_id") == ids[next(iter(done))]).row(0, named=True)
    assert paid_off == {"loan_id": ids[next(iter(done))], "open_amount": 0,
                        "first_open_due": None, "first_open_left": 0}  # fmt: skip


def test_the_schedules_filled_from_scratch_equal_the_kept_ones(tmp_path: Path, db_url: str) -> None:
    """Migration 0011 fills the columns of a ledger imported before them with `statements`."""
    _, engine = build_book(tmp_path, db_url, 150, 4)
    kept = _kept(engine)
    with engine.begin() as conn:
        conn.execute(update(loans).values(open_amount=0, first_open_due=None, first_open_left=0))
        for sql in schedules.statements(conn.dialect.name == "sqlite", None):
            conn.exec_driver_sql(sql)
    assert _kept(engine).equals(kept)
    assert kept.filter(pl.col("first_open_due").is_not_null()).height > 0


def test_loans_whose_instalments_span_batches_get_all_of_them_counted(
    tmp_path: Path, db_url: str
) -> None:
    """A new loan gets its schedule from its batch's rows; one seen again in a later batch is
    worked out again from all its instalments. Batches of 7 rows split most loans."""
    _, engine = build_book(tmp_path, db_url, 60, 5)
    whole = _kept(engine)
    with engine.begin() as conn:
        for table in ("instalments", "loans", "customer_phones", "customers", "imports"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    import_file(engine, tmp_path / "ledger.csv", RULES, batch_rows=7)
    kept = _kept(engine)
    assert kept.equals(_from_instalments(engine))
    assert kept.drop("loan_id").sort(pl.all()).equals(whole.drop("loan_id").sort(pl.all()))
