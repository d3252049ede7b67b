"""The report against the truth: a month simulated twice with common random numbers (with and
without control groups) gives each step's true effect on the customers it held back, and the
report's 95% intervals must hold it (benchmarks/report_truth.py measures this over more seeds
and a larger book; BENCHMARKS.md has the coverage)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy import select

from cuikuan.sim.borrowers import Situation, uplift
from cuikuan.sim.truth import check_report, twin_books
from cuikuan.store.schema import loans
from cuikuan.store.times import as_utc
from tests.integration.conftest import DAY


def test_the_reports_intervals_cover_each_steps_true_effect(tmp_path: Path) -> None:
    books = twin_books(tmp_path, 2000, 3, DAY, 0.25)
    # The book's paid amounts are as of before the month, in every copy, whatever today's date:
    # a snapshot inside the month would swallow the simulated payments made before it.
    for twin in (books.held, books.sent):
        with twin.engine.connect() as conn:
            taken = {as_utc(t) for t in conn.execute(select(loans.c.paid_snapshot_at)).scalars()}
        assert len(taken) == 1 and taken.pop() < datetime.combine(DAY, time(0), UTC)
    found = check_report(books, days=21, seed=3)
    assert len(found.steps) >= 5, [s.step for s in found.steps]  # enough held back to judge
    missed = [s for s in found.steps if not s.covered]
    assert not missed, missed
    assert sum(not s.amount_covered for s in found.steps) <= 1, found.steps
    # The truth is not trivially zero: some step's message works.
    assert max(s.true_rate for s in found.steps) > 0.02


def test_the_simulated_borrowers_answer_tone_by_their_history() -> None:
    """A gentle word works best on a first-time late payer, a firm one on a repeat late payer."""

    def lift(tone: str, first: bool) -> float:
        return uplift(Situation(5, None, first, True, tone, 1, False))

    assert lift("gentle", True) > lift("firm", True)
    assert lift("firm", False) > lift("gentle", False)
