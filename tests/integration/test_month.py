"""A few simulated days of the whole cycle end in terminal states and measurable steps."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from cuikuan.settings import Settings
from cuikuan.sim.month import run_month
from cuikuan.store.schema import outbox
from tests.integration.conftest import DAY

TERMINAL = {
    "delivered",
    "undelivered",
    "failed",
    "expired",
    "suppressed",
    "uncertain",
    "cancelled",
    "held",
}


def test_a_week_of_the_daily_cycle(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    report = run_month(engine, settings, DAY, 7, seed=3)
    assert report.planned > 0 and report.sent > 0 and report.payments > 0
    assert report.steps.height > 0 and set(report.steps.columns) >= {
        "step",
        "sent",
        "control",
        "uplift",
    }
    end = datetime.combine(
        DAY + timedelta(days=7), time(0), tzinfo=ZoneInfo(settings.defaults.timezone)
    )
    with engine.connect() as conn:
        states = dict(
            conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        )
        pending = (
            conn.execute(select(outbox.c.earliest_at).where(outbox.c.status == "planned"))
            .scalars()
            .all()
        )
    # Every message whose window has come ended somewhere, with a reason; only messages moved
    # past the last simulated day (a holiday shift) may still wait.
    assert set(states) <= TERMINAL | {"planned"}, states
    assert all((p if p.tzinfo else p.replace(tzinfo=ZoneInfo("UTC"))) >= end for p in pending)
