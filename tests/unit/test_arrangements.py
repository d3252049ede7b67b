"""Instalment plans: a schedule must cover the overdue amount; kept, broken, partial payments."""

from datetime import date

from cuikuan.domain.arrangements import Agreed, next_agreed, plan_state, validate_schedule

TODAY = date(2026, 11, 30)
PLAN = [Agreed(date(2026, 12, 5), 30000), Agreed(date(2026, 12, 20), 30000)]


def test_a_schedule_must_cover_the_overdue_amount_from_today_on() -> None:
    assert validate_schedule(PLAN, 60000, TODAY) is None
    assert "do not cover" in (validate_schedule(PLAN, 60001, TODAY) or "")
    assert "past" in (validate_schedule([Agreed(date(2026, 11, 1), 60000)], 1, TODAY) or "")
    assert "in order" in (validate_schedule(list(reversed(PLAN)), 1, TODAY) or "")
    assert "more than zero" in (validate_schedule([Agreed(TODAY, 0)], 0, TODAY) or "")


def test_kept_current_and_broken() -> None:
    assert plan_state(PLAN, 0, date(2026, 12, 7)) == "current"  # within the grace of the first
    assert plan_state(PLAN, 0, date(2026, 12, 8)) == "broken"
    assert plan_state(PLAN, 30000, date(2026, 12, 22)) == "current"
    assert plan_state(PLAN, 30000, date(2026, 12, 23)) == "broken"
    assert plan_state(PLAN, 60000, date(2026, 12, 1)) == "kept"


def test_payments_count_cumulatively() -> None:
    assert plan_state(PLAN, 45000, date(2026, 12, 10)) == "current"
    assert next_agreed(PLAN, 45000) == (PLAN[1], 15000)
    assert next_agreed(PLAN, 60000) is None
