"""The report: attribution and uplift on a case computed by hand, empty data, a simulated
month, and the HTML in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.services.importer import import_file
from cuikuan.services.planner import make_plan
from cuikuan.services.replies import receive_reply
from cuikuan.services.report import build_report
from cuikuan.settings import Settings
from cuikuan.sim.month import run_month
from cuikuan.store.schema import loans, outbox
from cuikuan.web.report_html import render_html
from tests.helpers import RULES, write_csv
from tests.integration.conftest import DAY
from tests.integration.test_send import OPEN

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_attribution_and_uplift_match_a_case_worked_by_hand(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.step, outbox.c.status, outbox.c.recipient,
                   outbox.c.billing_units, loans.c.external_id.label("loan"))
            .join(loans, loans.c.id == outbox.c.loan_id).order_by(outbox.c.id)
        ).all()  # fmt: skip
    step = next(r.step for r in rows if r.status == "held")
    mine = [r for r in rows if r.step == step]
    sent = next(r for r in mine if r.status == "sent")
    held = next(r for r in mine if r.status == "held")
    zone = ZoneInfo(settings.defaults.timezone)
    stamp = "%Y-%m-%d %H:%M:%S"
    write_csv(
        tmp_path / "paid.csv",
        ["还款流水号", "借据号", "还款时间", "还款金额"],
        [
            ["H1", sent.loan, (OPEN + timedelta(hours=20)).astimezone(zone).strftime(stamp), "123.45"],
            ["H2", held.loan, (OPEN + timedelta(hours=50)).astimezone(zone).strftime(stamp), "10.00"],
        ],
    )  # fmt: skip
    import_file(engine, tmp_path / "paid.csv", RULES)
    receive_reply(engine, settings, sent.recipient, "退订", OPEN + timedelta(hours=2))

    report = build_report(engine, settings, DAY, DAY, window_days=3)
    row = report.steps.filter(pl.col("step") == step).row(0, named=True)
    n_sent = sum(r.status == "sent" for r in mine)
    n_held = sum(r.status == "held" for r in mine)
    assert (row["planned"], row["sent"], row["control"]) == (len(mine), n_sent, n_held)
    assert (row["replied"], row["opted_out"], row["complained"]) == (1, 1, 0)
    assert (row["paid_1d"], row["paid_3d"], row["paid_7d"]) == (1, 1, 1)  # the held one is control
    assert row["recovered"] == 12345
    units = sum(r.billing_units for r in mine if r.status == "sent")
    assert row["cost"] == round(units * 0.045 * 100)
    assert row["cost_per_1000_recovered"] == pytest.approx(row["cost"] / 12345 * 1000, abs=1e-4)
    up = next(u for u in report.uplift if u["step"] == step)
    assert up["pay_rate"]["n_treated"] == n_sent and up["pay_rate"]["n_control"] == n_held
    assert up["pay_rate"]["treated"] == pytest.approx(1 / n_sent)
    assert up["pay_rate"]["control"] == pytest.approx(1 / n_held)
    narrow = build_report(engine, settings, DAY, DAY, window_days=1)
    assert next(u for u in narrow.uplift if u["step"] == step)["pay_rate"]["control"] == 0
    templates = report.templates.filter(pl.col("template") == row["template"]).row(0, named=True)
    assert templates["opted_out"] >= 1


def test_the_report_renders_with_no_data(db_url: str, tmp_path: Path) -> None:
    from cuikuan.settings import default_settings_text, load_settings
    from cuikuan.store.engine import open_database

    (tmp_path / "cuikuan.toml").write_text(
        default_settings_text().replace('url = "sqlite:///cuikuan.db"', f'url = "{db_url}"'),
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "cuikuan.toml", environ={})
    engine = open_database(settings.database_url)
    report = build_report(engine, settings, DAY, DAY + timedelta(days=40))
    assert report.steps.is_empty() and report.uplift == [] and report.notes
    page = render_html(report, datetime(2026, 11, 29, tzinfo=UTC))
    assert "没有数据 no data" in page and "<script" not in page


def test_a_simulated_month_renders_and_opens_in_headless_chromium(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = book
    run_month(engine, settings, DAY, 8, seed=3)
    report = build_report(engine, settings, DAY, DAY + timedelta(days=7))
    with engine.connect() as conn:
        planned = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert int(report.steps["planned"].sum()) == planned
    assert report.daily.height == 8 and int(report.daily["payments"].sum()) > 0
    # Champion and challenger are compared on pay rate and on money recovered alike.
    assert report.variants and all(
        {"pay_rate", "recovered_per_member"} <= set(v) for v in report.variants
    )
    page = render_html(report, datetime(2026, 11, 29, tzinfo=UTC))
    for heading in ("漏斗 Funnel", "对照组提升", "迁徙率 Roll rates", "送达率", "每日量"):
        assert heading in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # offline
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed (CI=true: the browser check must run)")
        pytest.skip("chromium is not installed (Debian package chromium)")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--dump-dom", html.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "效果报告" in done.stdout and "<svg" in done.stdout
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
