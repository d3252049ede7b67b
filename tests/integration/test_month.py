"""A few simulated days of the whole cycle end in terminal states and measurable steps."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
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
        "treated",
        "control",
        "uplift",
        "verdict",
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


def test_the_same_seed_gives_the_same_month(tmp_path: Path) -> None:
    from cuikuan.services.importer import import_file
    from cuikuan.settings import default_settings_text, load_settings
    from cuikuan.sim.generator import GenerateOptions, generate
    from cuikuan.store.engine import open_database
    from tests.helpers import RULES

    ledger = tmp_path / "ledger.csv"
    generate(GenerateOptions(300, 5, DAY, ledger))
    reports = []
    for run in ("a", "b"):
        folder = tmp_path / run
        folder.mkdir()
        (folder / "cuikuan.toml").write_text(default_settings_text(), encoding="utf-8")
        settings = load_settings(folder / "cuikuan.toml", environ={})
        engine = open_database(settings.database_url)
        import_file(engine, ledger, RULES)
        report = run_month(engine, settings, DAY, 5, seed=9)
        reports.append(
            (
                report.planned,
                report.sent,
                report.payments,
                report.collected,
                report.steps.to_dicts(),
            )
        )
        engine.dispose()
    assert reports[0] == reports[1]
