"""Loan positions summed by the database (loans with no payment to allocate) equal positions
computed instalment by instalment, on both databases: dates before, on and after due dates,
grace days, partial and over-payments after the snapshot, loans paid off."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, select

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
