"""The report: attribution and uplift on a case computed by hand, empty data, a simulated
month, and the HTML in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import Engine, func, select, update

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.services.importer import import_file
from cuikuan.services.planner import make_plan, steps_of
from cuikuan.services.replies import receive_reply
from cuikuan.services.report import build_report
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.sim.month import run_month
from cuikuan.store.schema import loans, outbox
from cuikuan.store.times import as_utc
from cuikuan.web.report_html import render_html
from tests.helpers import RULES, write_csv
from tests.integration.conftest import DAY, build_book
from tests.integration.test_send import OPEN

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_uplift_is_intention_to_treat_from_one_window_start_worked_by_hand(
    db_url: str, tmp_path: Path
) -> None:
    settings, engine = build_book(tmp_path, db_url, 1500, 11)
    make_plan(engine, settings, DAY)
    send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.step, outbox.c.status, outbox.c.recipient,
                   outbox.c.billing_units, outbox.c.opens_at, outbox.c.sent_at,
                   loans.c.external_id.label("loan"))
            .join(loans, loans.c.id == outbox.c.loan_id).order_by(outbox.c.id)
        ).all()  # fmt: skip
    with_control = {r.step for r in rows if r.status == "held"}
    step = max(with_control, key=lambda s: sum(r.step == s and r.status == "sent" for r in rows))
    mine = [r for r in rows if r.step == step]
    sent = [r for r in mine if r.status == "sent"]
    held = next(r for r in mine if r.status == "held")
    early, late_payer, before, stopped = sent[0], sent[1], sent[2], sent[3]
    opens = as_utc(early.opens_at)
    assert opens < as_utc(early.sent_at)  # the window opened before the message went
    # The re-check stopped one treated row after the draw: it stays in the treated arm.
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == stopped.id)
                     .values(status="suppressed", reason="paid since planning"))  # fmt: skip
    zone = ZoneInfo(settings.defaults.timezone)
    stamp = "%Y-%m-%d %H:%M:%S"

    def at(row: Any, hours: float) -> str:
        return (as_utc(row.opens_at) + timedelta(hours=hours)).astimezone(zone).strftime(stamp)

    write_csv(
        tmp_path / "paid.csv",
        ["还款流水号", "借据号", "还款时间", "还款金额"],
        [
            # Paid between the window's opening and the send: counts, as it would for control.
            ["H1", early.loan, at(early, -0.5 + (as_utc(early.sent_at) - opens).total_seconds() / 3600), "123.45"],
            ["H2", held.loan, at(held, 50), "10.00"],
            ["H3", before.loan, at(before, -2), "99.00"],  # before the window: not counted
            ["H4", stopped.loan, at(stopped, 5), "7.00"],
            ["H5", late_payer.loan, at(late_payer, 80), "1.00"],  # after the 3 days
        ],
    )  # fmt: skip
    import_file(engine, tmp_path / "paid.csv", RULES)
    receive_reply(engine, settings, early.recipient, "退订", OPEN + timedelta(hours=2))

    report = build_report(engine, settings, DAY, DAY, window_days=3)
    n_treated = sum(r.status != "held" for r in mine)
    n_held = len(mine) - n_treated
    up = next(u for u in report.uplift if u["step"] == step)
    rate, money = up["pay_rate"], up["recovered_per_member"]
    assert (rate["n_treated"], rate["n_control"]) == (n_treated, n_held)
    assert rate["treated"] == pytest.approx(2 / n_treated)  # H1 and H4
    assert rate["control"] == pytest.approx(1 / n_held)
    assert money["treated"] == pytest.approx((12345 + 700) / n_treated)
    assert money["control"] == pytest.approx(1000 / n_held)
    assert up["incremental"] == round((money["treated"] - money["control"]) * n_treated)
    assert up["collected_treated"] == 13045 and up["collected_control"] == 1000
    assert up["sent_share"] == pytest.approx(round((n_treated - 1) / n_treated, 4))
    assert up["suppressed_share"] == pytest.approx(round(1 / n_treated, 4))
    units = sum(r.billing_units for r in mine if r.status == "sent" and r.id != stopped.id)
    assert up["cost"] == round(units * 0.045 * 100)
    narrow = build_report(engine, settings, DAY, DAY, window_days=1)
    assert next(u for u in narrow.uplift if u["step"] == step)["pay_rate"]["control"] == 0

    # The message table: what followed each sent message (no money added up across messages).
    per = report.steps.filter(pl.col("step") == step)
    total = {k: int(per[k].sum()) for k in ("planned", "sent", "control", "replied", "opted_out")}
    assert total == {"planned": n_treated, "sent": n_treated - 1, "control": n_held,
                     "replied": 1, "opted_out": 1}  # fmt: skip
    assert "recovered" not in report.steps.columns
    funnel = next(f for f in report.funnel if f["step"] == step)
    assert (funnel["held"], funnel["treated"], funnel["sent"]) == (n_held, n_treated, n_treated - 1)
    assert funnel["after_draw"] == {"paid since planning": 1}
    assert [f["step"] for f in report.funnel] == [
        s for s in steps_of(load_strategy(settings)) if s in {f["step"] for f in report.funnel}
    ]  # the lifecycle's order
    assert int(report.templates["opted_out"].sum()) >= 1

    # A day later the 3-day windows are still open: counted apart, not compared.
    soon = build_report(engine, settings, DAY, DAY, window_days=3, now=OPEN + timedelta(days=1))
    still = next(u for u in soon.uplift if u["step"] == step)
    assert still["open_windows"] == len(mine) and still["pay_rate"]["n_treated"] == 0
    assert any("still open" in n for n in soon.notes)


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
    assert int(report.steps["planned"].sum() + report.steps["control"].sum()) == planned
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


def test_template_rates_count_each_reply_for_the_last_message_to_its_number(
    db_url: str, tmp_path: Path
) -> None:
    """The console's per-template rates against a count by hand: a reply belongs to the last
    message sent to its number in the 3 days before it; an opt-out and a complaint are shares
    of the messages sent; a reply from a number never messaged counts for no template."""
    from cuikuan.services.report import template_rates

    settings, engine = build_book(tmp_path, db_url, 1500, 11)
    make_plan(engine, settings, DAY)
    send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    with engine.connect() as conn:
        sent = conn.execute(
            select(outbox.c.template, outbox.c.recipient, outbox.c.sent_at)
            .where(outbox.c.status == "sent").order_by(outbox.c.id)
        ).all()  # fmt: skip
    by_template: dict[str, list[Any]] = {}
    for row in sent:
        by_template.setdefault(row.template, []).append(row)
    busiest = max(by_template, key=lambda t: len(by_template[t]))
    chosen = by_template[busiest]
    assert len(chosen) >= 4
    later = as_utc(chosen[0].sent_at) + timedelta(hours=2)
    said = {
        chosen[0].recipient: "退订",
        chosen[1].recipient: "再发就投诉",
        chosen[2].recipient: "好的",
    }
    for number, text in said.items():
        receive_reply(engine, settings, number, text, later, source="sim")
    receive_reply(engine, settings, "+8613000000001", "退订", later, source="sim")  # never messaged
    rates = {r["template"]: r for r in template_rates(engine, settings, DAY, DAY)}
    mine = rates[busiest]
    n = len(chosen)
    assert (mine["sent"], mine["replied"], mine["opted_out"], mine["complained"]) == (n, 3, 1, 1)
    assert mine["reply_rate"] == round(3 / n, 4) and mine["opt_out_rate"] == round(1 / n, 4)
    assert sum(r["sent"] for r in rates.values()) == len(sent)
    assert all(r["replied"] == 0 for t, r in rates.items() if t != busiest)
