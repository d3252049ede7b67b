"""A month of the daily cycle on the sandbox: plan, send, borrowers pay (or not), repeat.

    report = run_month(engine, settings, start=date(2026, 11, 30), days=30, seed=7)

Each simulated day: plan the day; send at 10:00 and 15:00 lender time through the sandbox
(receipts arrive); borrowers respond (sim.borrowers): some write back (read and acted on like
any reply: opt-outs, promises, tasks), and their payments arrive as the lender's payments file,
imported like any other. The clock is the simulation's, so a month runs in
seconds, and every promise of plan and send holds as it would on real days.
"""

from __future__ import annotations

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
from cuikuan.sim.borrowers import (
    Situation,
    amount_paid,
    pays_today,
    reply_today,
    stream,
    trait,
)
from cuikuan.store.schema import customers, loans, outbox

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
    zone = ZoneInfo(settings.defaults.timezone)
    channel = channel or SandboxChannel(engine)
    tones = {t.name: t.tone for t in load_templates(templates_dir(settings))[0]}
    rules = Rules(settings.defaults.region, settings.defaults.timezone, settings.defaults.currency)
    history = _Lateness()
    report = MonthReport(days=days)
    with tempfile.TemporaryDirectory(prefix="cuikuan-month-") as tmp:
        for offset in range(days):
            day = start + timedelta(days=offset)
            plan = make_plan(engine, settings, day, now=_at(day, 8, zone))
            report.planned += plan.written
            for hour in SEND_HOURS:
                report.sent += send_due(engine, settings, channel, _at(day, hour, zone)).sent
            paid = _borrowers_pay(engine, settings, day, seed, tones, history, Path(tmp), rules)
            report.payments += paid[0]
            report.collected += paid[1]
            report.replies += paid[2]
            if progress:
                progress(offset + 1, days)
        collect_receipts(engine, settings, channel, _at(start + timedelta(days=days), 0, zone))
    report.steps = step_results(engine, settings, start, start + timedelta(days=days))
    return report


def _at(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


REPEAT_LATE = 0.35  # share of borrowers who were late before the month began


@dataclass
class _Lateness:
    """Who has been late and who has cured since, day by day: a borrower late again after
    curing is a repeat late payer from then on."""

    late: set[str] = field(default_factory=set)
    cured: set[str] = field(default_factory=set)
    relapsed: set[str] = field(default_factory=set)

    def see(self, customer: str, dpd: int) -> None:
        if dpd > 0:
            if customer in self.cured:
                self.relapsed.add(customer)
            self.late.add(customer)
        elif customer in self.late:
            self.cured.add(customer)

    def first_time(self, seed: int, customer: str) -> bool:
        before = trait(seed, "repeat_late", customer) < REPEAT_LATE
        return not before and customer not in self.relapsed


def _borrowers_pay(
    engine: Engine,
    settings: Settings,
    day: date,
    seed: int,
    tones: dict[str, str],
    history: _Lateness,
    folder: Path,
    rules: Rules,
) -> tuple[int, int, int]:
    # Each borrower's draws come from their own stream for the day (common random numbers):
    # what others do, or what was decided for others, never changes anyone's luck.
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
        people = dict(conn.execute(select(customers.c.id, customers.c.external_id)).all())
    rows: list[tuple[str, str, str, str]] = []
    said: list[tuple[str, str, int]] = []
    for row in positions.iter_rows(named=True):
        who = people[row["customer_id"]]
        history.see(who, row["dpd"])
        if row["dpd"] == 0 and (row["days_to_due"] is None or row["days_to_due"] > 3):
            continue
        lid = row["loan_id"]
        loan = loan_ids[lid]
        template, number = reached.get(lid, (None, None))
        situation = Situation(
            dpd=row["dpd"],
            days_to_due=row["days_to_due"],
            first_time=history.first_time(seed, who),
            reminded_today=template is not None,
            tone=tones.get(template or ""),
            messages_this_week=recent.get(row["customer_id"], 0),
            stubborn=trait(seed, "stubborn", loan) < 0.25,
            forgetful=trait(seed, "forgetful", loan) < 0.3,
        )
        luck = stream(seed, "pay", loan, day)
        talk = stream(seed, "talk", loan, day)
        paying = pays_today(situation, luck)
        text = reply_today(situation, paying, talk)
        if text is not None and number is not None:
            said.append((number, text, talk.randrange(60)))
        if not paying:
            continue
        due = row["overdue_amount"] if row["dpd"] > 0 else row["next_due_amount"]
        amount = amount_paid(due, luck)
        moment = datetime.combine(day, time(luck.randint(11, 20), luck.randrange(60)))
        rows.append(
            (
                f"SIM{day:%Y%m%d}{len(rows):06d}",
                loan,
                moment.strftime("%Y-%m-%d %H:%M:%S"),
                f"{amount // 100}.{amount % 100:02d}",
            )
        )
    zone = ZoneInfo(settings.defaults.timezone)
    for number, text, minute in said:
        at = datetime.combine(day, time(19, minute), tzinfo=zone).astimezone(UTC)
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
    """Per step: the report's uplift (services.report: intention to treat, both arms' windows
    from the same moment), as a table: members treated and held back, their pay rates within 3
    days, the difference and the verdict."""
    from cuikuan.services.report import build_report

    uplift = build_report(engine, settings, start, end - timedelta(days=1)).uplift
    schema = {"step": pl.String, "treated": pl.Int64, "control": pl.Int64,
              "paid_3d_treated": pl.Float64, "paid_3d_control": pl.Float64,
              "uplift": pl.Float64, "verdict": pl.String}  # fmt: skip
    return pl.DataFrame(
        [(u["step"], u["pay_rate"]["n_treated"], u["pay_rate"]["n_control"],
          u["pay_rate"]["treated"], u["pay_rate"]["control"], u["pay_rate"]["difference"],
          u["pay_rate"]["verdict"]) for u in uplift],
        schema=schema,
        orient="row",
    )  # fmt: skip
