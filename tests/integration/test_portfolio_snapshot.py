"""Today's portfolio is computed once per day and ledger version and kept in the database: a
process that never computed it reads it (the console's first view after the worker ran), and
an import makes it compute afresh (never older than the ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, func, select

from cuikuan.services import portfolio as portfolio_module
from cuikuan.services.importer import import_file
from cuikuan.services.portfolio import portfolio, portfolio_now
from cuikuan.services.worker import warm_portfolio
from cuikuan.settings import Settings
from cuikuan.store.schema import portfolio_snapshots
from tests.helpers import RULES, write_csv
from tests.integration.conftest import DAY
from tests.integration.test_import import HEADER

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai on DAY


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(portfolio_snapshots)).scalar_one())


def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a server process that has computed nothing: no memo, and positioning the book fails."""
    monkeypatch.setattr(portfolio_module, "_SEEN", {})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("positioned the whole book")

    monkeypatch.setattr(portfolio_module, "portfolio", refuse)


def test_the_worker_computes_it_once_and_a_fresh_process_reads_it(
    book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings, engine = book
    truth = portfolio(engine, DAY, settings)
    warm_portfolio(engine, settings, NOW)
    assert _stored(engine) == 1
    with monkeypatch.context() as patch:
        _new_process(patch)
        read = portfolio_now(engine, DAY, settings, NOW)
    assert_frame_equal(read.buckets, truth.buckets)
    assert_frame_equal(read.dpd, truth.dpd)
    assert (read.closed_accounts, read.currency_digits) == (
        truth.closed_accounts,
        truth.currency_digits,
    )
    # An import changes the ledger: the stored one is not used for it.
    extra = [["C999999", "新客户", "13800999999", "L999999", "1", "2026-11-01", "500.00", "0", ""]]
    import_file(engine, write_csv(tmp_path / "more.csv", HEADER, extra), RULES)
    with monkeypatch.context() as patch:
        _new_process(patch)
        with pytest.raises(AssertionError, match="positioned the whole book"):
            portfolio_now(engine, DAY, settings, NOW)
    monkeypatch.setattr(portfolio_module, "_SEEN", {})
    after = portfolio_now(engine, DAY, settings, NOW)
    assert_frame_equal(after.buckets, portfolio(engine, DAY, settings).buckets)
    assert after.buckets["accounts"].sum() == truth.buckets["accounts"].sum() + 1
    assert _stored(engine) == 2


def test_a_day_asked_without_a_clock_is_not_stored(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    portfolio_now(engine, DAY, settings)  # a past day asked through the API
    assert _stored(engine) == 0
