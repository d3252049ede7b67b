"""A month of the daily cycle on the sandbox: plan, send, borrowers pay (or not), repeat.

    report = run_month(engine, settings, start=date(2026, 11, 30), days=30, seed=7)

Each simulated day: plan the day; send at 10:00 and 15:00 lender time through the sandbox
(receipts arrive); borrowers respond (sim.borrowers): some write back (read and acted on like
any reply: opt-outs, promises, tasks), and their payments arrive as the lender's payments file,
imported like any other. The clock is the simulation's, so a month runs in
seconds, and every promise of plan and send holds as it would on real days.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, select

from cuikuan.channels.base import Channel
from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import collect_receipts, send_due
from cuikuan.ingest.validate import Rules
from cuikuan.services.importer import import_file
from cuikuan.services.messages import load_templates, templates_dir
from cuikuan.services.planner import make_plan
from cuikuan.services.portfolio import loan_positions
from cuikuan.services.replies import receive_reply
from cuikuan.settings import Settings
from cuikuan.sim.borrowers import Situation, amount_paid, pays_today, reply_today
from cuikuan.store.schema import loans, outbox

SEND_HOURS = (10, 15)


@dataclass
class MonthReport:
    days: int = 0
    planned: int = 0
    sent: int = 0
    payments: int = 0
    collected: int = 0  # minor units
    replies: int = 0
    steps: pl.DataFrame = field(default_factory=pl.DataFrame)


def run_month(
    engine: Engine,
    settings: Settings,
    start: date,
    days: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    channel: Channel | None = None,
) -> MonthReport:
    """`channel`: the sandbox unless given (`sim month --smpp` hands in an SMPP channel bound
    to a local SMSC)."""
    rng = random.Random(seed)
    talk = random.Random(seed * 7919 + 1)  # replies draw apart, so payments draw as before
    zone = ZoneInfo(settings.defaults.timezone)
    channel = channel or SandboxChannel(engine)
    tones = {t.name: t.tone for t in load_templates(templates_dir(settings))[0]}
    rules = Rules(settings.defaults.region, settings.defaults.timezone, settings.defaults.currency)
    stubborn: dict[int, bool] = {}
    forgetful: dict[int, bool] = {}
    report = MonthReport(days=days)
    with tempfile.TemporaryDirectory(prefix="cuikuan-month-") as tmp:
        for offset in range(days):
            day = start + timedelta(days=offset)
            plan = make_plan(engine, settings, day, now=_at(day, 8, zone))
            report.planned += plan.written
            for hour in SEND_HOURS:
                report.sent += send_due(engine, settings, channel, _at(day, hour, zone)).sent
            paid = _borrowers_pay(
                engine, settings, day, rng, tones, stubborn, forgetful, Path(tmp), rules, talk
            )
            report.payments += paid[0]
            report.collected += paid[1]
            report.replies += paid[2]
            if progress:
                progress(offset + 1, days)
        collect_receipts(engine, channel, _at(start + timedelta(days=days), 0, zone))
    report.steps = step_results(engine, settings, start, start + timedelta(days=days))
    return report


def _at(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def _borrowers_pay(
    engine: Engine,
    settings: Settings,
    day: date,
    rng: random.Random,
    tones: dict[str, str],
    stubborn: dict[int, bool],
    forgetful: dict[int, bool],
    folder: Path,
    rules: Rules,
    talk: random.Random,
) -> tuple[int, int, int]:
    # In loan order: the random draws must land on the same borrowers in every run.
    positions = loan_positions(engine, day, settings).filter(~pl.col("paid_off")).sort("loan_id")
    with engine.connect() as conn:
        # A reminder delivered today or in the two days before still works on the borrower.
        reached = {
            r.loan_id: (r.template, r.recipient)
            for r in conn.execute(
                select(outbox.c.loan_id, outbox.c.template, outbox.c.recipient)
                .where(
                    outbox.c.plan_date > day - timedelta(days=3),
                    outbox.c.plan_date <= day,
                    outbox.c.status.in_(("sent", "delivered")),
                )
                .order_by(outbox.c.plan_date)
            )
        }
        recent: dict[int, int] = {}
        for cid in conn.execute(
            select(outbox.c.customer_id).where(
                outbox.c.plan_date > day - timedelta(days=7),
                outbox.c.status.in_(("sent", "delivered")),
            )
        ).scalars():
            recent[cid] = recent.get(cid, 0) + 1
        loan_ids = dict(conn.execute(select(loans.c.id, loans.c.external_id)).all())
    rows: list[tuple[str, str, str, str]] = []
    said: list[tuple[str, str]] = []
    for row in positions.iter_rows(named=True):
        if row["dpd"] == 0 and (row["days_to_due"] is None or row["days_to_due"] > 3):
            continue
        lid = row["loan_id"]
        stubborn.setdefault(lid, rng.random() < 0.25)
        forgetful.setdefault(lid, rng.random() < 0.3)
        template, number = reached.get(lid, (None, None))
        situation = Situation(
            dpd=row["dpd"],
            days_to_due=row["days_to_due"],
            first_time=row["dpd"] <= 30,
            reminded_today=template is not None,
            tone=tones.get(template or ""),
            messages_this_week=recent.get(row["customer_id"], 0),
            stubborn=stubborn[lid],
            forgetful=forgetful[lid],
        )
        paying = pays_today(situation, rng)
        text = reply_today(situation, paying, talk)
        if text is not None and number is not None:
            said.append((number, text))
        if not paying:
            continue
        due = row["overdue_amount"] if row["dpd"] > 0 else row["next_due_amount"]
        amount = amount_paid(due, rng)
        moment = datetime.combine(day, time(rng.randint(11, 20), rng.randrange(60)))
        rows.append(
            (
                f"SIM{day:%Y%m%d}{len(rows):06d}",
                loan_ids[lid],
                moment.strftime("%Y-%m-%d %H:%M:%S"),
                f"{amount // 100}.{amount % 100:02d}",
            )
        )
    zone = ZoneInfo(settings.defaults.timezone)
    for number, text in said:
        at = datetime.combine(day, time(19, talk.randrange(60)), tzinfo=zone).astimezone(UTC)
        receive_reply(engine, settings, number, text, at, source="sim")
    if not rows:
        return 0, 0, len(said)
    path = folder / f"payments-{day:%Y%m%d}.csv"
    pl.DataFrame(
        rows, schema=["payment_id", "loan_id", "paid_at", "amount"], orient="row"
    ).write_csv(path)
    imported = datetime.combine(day, time(21, 30), tzinfo=zone).astimezone(UTC)
    import_file(engine, path, rules, now=imported)
    return len(rows), sum(int(r[3].replace(".", "")) for r in rows), len(said)


def step_results(engine: Engine, settings: Settings, start: date, end: date) -> pl.DataFrame:
    """Per step and variant: loans reached and held back, and the share of each group whose loan
    saw a payment within 3 days of the step first choosing it: the measured uplift."""
    from cuikuan.store import ledger_reads

    with engine.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.step,
                outbox.c.variant,
                outbox.c.template,
                outbox.c.control,
                outbox.c.status,
                outbox.c.loan_id,
                outbox.c.plan_date,
            ).where(
                outbox.c.plan_date >= start,
                outbox.c.plan_date < end,
                outbox.c.status.in_(("sent", "delivered", "undelivered", "held")),
            )
        ).all()
        pays = ledger_reads.payments(conn)
    if not rows:
        return pl.DataFrame()
    messages = pl.DataFrame(
        [(r.step, r.variant, r.template, bool(r.control), r.loan_id, r.plan_date) for r in rows],
        schema={
            "step": pl.String,
            "variant": pl.Int64,
            "template": pl.String,
            "control": pl.Boolean,
            "loan_id": pl.Int64,
            "plan_date": pl.Date,
        },
        orient="row",
    )
    zone = settings.defaults.timezone
    paid_days = pays.select(
        "loan_id", pl.col("paid_at").dt.convert_time_zone(zone).dt.date().alias("paid_on")
    ).unique()
    # Each loan counts once per step, from the first day the step chose it (sent or held): a
    # control member is chosen again every day and would otherwise be counted many times.
    first = messages.sort("plan_date").unique(["step", "loan_id"], keep="first")
    flagged = (
        first.join(paid_days, on="loan_id", how="left")
        .with_columns(
            (
                (pl.col("paid_on") >= pl.col("plan_date"))
                & (pl.col("paid_on") <= pl.col("plan_date") + pl.duration(days=3))
            )
            .fill_null(False)
            .alias("paid3")
        )
        .group_by("step", "variant", "template", "control", "loan_id", "plan_date")
        .agg(pl.col("paid3").any())
    )
    summary = flagged.group_by("step", "variant", "template").agg(
        pl.col("control").not_().sum().alias("sent"),
        pl.col("control").sum().alias("control"),
        pl.col("paid3").filter(~pl.col("control")).mean().alias("paid_3d_sent"),
        pl.col("paid3").filter(pl.col("control")).mean().alias("paid_3d_control"),
    )
    return summary.with_columns(
        (pl.col("paid_3d_sent") - pl.col("paid_3d_control")).alias("uplift")
    ).sort("step", "variant")
