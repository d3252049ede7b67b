"""The report: what each message recovered against its control group, and the collections KPIs.

    report = build_report(engine, settings, date(2026, 11, 30), date(2026, 12, 29))

Attribution, per step, template and variant, for the messages planned in [start, end]: planned,
held back as control, sent, delivered, replies by intent (a reply counts for the last message
sent to that number in the 3 days before it), opted out, complained, paid within 1, 3 and 7
days (from the payments recorded against each message: `services.attribution`), amount recovered
within 7 days, cost (billing units x price) and cost per 1,000 of money recovered.

Uplift, per step: each customer counts once, from the first message of the step in the range
(a control member is chosen again day after day and would otherwise count many times); the pay
rate within `window_days` and the amount recovered of the treated against the control, with
intervals and a verdict (domain.uplift). Variants against the step's first (champion).

KPIs: roll rates between buckets from each month start to the next (or start to end for a
shorter range), cure rate, promise kept rate, delivery rate per channel and gateway, opt-out
and complaint rates per template, daily volumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, select

from cuikuan.domain import uplift
from cuikuan.domain.money import currency_digits
from cuikuan.services.attribution import LEFT
from cuikuan.services.portfolio import loan_positions
from cuikuan.settings import Settings
from cuikuan.store import sqlite_worker
from cuikuan.store.bulk import frame_from_rows
from cuikuan.store.schema import outbox, payment_touches, payments, promises, replies
from cuikuan.store.times import as_utc

REPLY_WINDOW = timedelta(days=3)
UTC_US = pl.Datetime("us", "UTC")


@dataclass
class Report:
    start: date
    end: date
    currency: str
    digits: int
    window_days: int
    steps: pl.DataFrame
    uplift: list[dict[str, Any]]
    variants: list[dict[str, Any]]
    roll_rates: list[dict[str, Any]]
    cure: dict[str, Any]
    promises: dict[str, Any]
    delivery: pl.DataFrame
    templates: pl.DataFrame
    daily: pl.DataFrame
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(), "currency": self.currency,
            "window_days": self.window_days, "steps": self.steps.to_dicts(), "uplift": self.uplift,
            "variants": self.variants, "roll_rates": self.roll_rates, "cure": self.cure,
            "promises": self.promises, "delivery": self.delivery.to_dicts(),
            "templates": self.templates.to_dicts(), "daily": self.daily.to_dicts(),
            "notes": self.notes,
        }  # fmt: skip


def build_report(
    engine: Engine, settings: Settings, start: date, end: date, window_days: int = 3
) -> Report:
    sqlite_worker.warm(engine)  # the book's positions are read at every month's edges
    zone = ZoneInfo(settings.defaults.timezone)
    digits = currency_digits(settings.defaults.currency)
    messages, touches, heard, paid, made = _read(engine, start, end, zone)
    price = Decimal(settings.plan.price_per_billing_unit)
    steps = _attribution(messages, touches, heard, price, digits)
    comparisons, variants = _uplift(messages, touches, window_days)
    rolls, cure = _roll_rates(engine, settings, start, end)
    report = Report(
        start, end, settings.defaults.currency, digits, window_days, steps, comparisons, variants,
        rolls, cure, _promises(made), _delivery(messages), _templates(steps),
        _daily(messages, paid, start, end, zone),
    )  # fmt: skip
    if messages.is_empty():
        report.notes.append("no messages were planned in this range")
    return report


# --- reading ------------------------------------------------------------------------------


def _read(
    engine: Engine, start: date, end: date, zone: ZoneInfo
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    lo = datetime.combine(start, time(0), tzinfo=zone)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.customer_id, outbox.c.loan_id, outbox.c.step,
                   outbox.c.template, outbox.c.variant, outbox.c.channel, outbox.c.recipient,
                   outbox.c.status, outbox.c.provider, outbox.c.reason, outbox.c.billing_units,
                   outbox.c.plan_date, outbox.c.sent_at, outbox.c.earliest_at)
            .where(outbox.c.plan_date >= start, outbox.c.plan_date <= end)
        ).all()  # fmt: skip
        ids = [r.id for r in rows]
        touch_rows: list[Any] = []
        for chunk in range(0, len(ids), 5000):
            touch_rows += conn.execute(
                select(payment_touches.c.outbox_id, payment_touches.c.payment_id,
                       payment_touches.c.hours_before, payments.c.amount)
                .join(payments, payments.c.id == payment_touches.c.payment_id)
                .where(payment_touches.c.outbox_id.in_(ids[chunk : chunk + 5000]))
            ).all()  # fmt: skip
        reply_rows = conn.execute(
            select(replies.c.sender, replies.c.received_at, replies.c.intent).where(
                replies.c.received_at >= lo, replies.c.received_at < hi + REPLY_WINDOW
            )
        ).all()
        pay_rows = conn.execute(
            select(payments.c.paid_at, payments.c.amount).where(
                payments.c.paid_at >= lo, payments.c.paid_at < hi
            )
        ).all()
        promise_rows = conn.execute(
            select(promises.c.status).where(promises.c.made_at >= lo, promises.c.made_at < hi)
        ).all()
    messages = frame_from_rows(
        [(r.id, r.customer_id, r.loan_id, r.step, r.template, r.variant, r.channel, r.recipient,
          r.status, r.provider, r.reason, r.billing_units, r.plan_date,
          as_utc(r.sent_at) if r.sent_at else None, as_utc(r.earliest_at)) for r in rows],
        {"outbox_id": pl.Int64, "customer_id": pl.Int64, "loan_id": pl.Int64, "step": pl.String,
         "template": pl.String, "variant": pl.Int64, "channel": pl.String, "recipient": pl.String,
         "status": pl.String, "provider": pl.String, "reason": pl.String,
         "billing_units": pl.Int64, "plan_date": pl.Date, "sent_at": UTC_US, "earliest_at": UTC_US},
    )  # fmt: skip
    touches = frame_from_rows(
        [tuple(t) for t in touch_rows],
        {"outbox_id": pl.Int64, "payment_id": pl.Int64, "hours_before": pl.Float64,
         "amount": pl.Int64},
    )  # fmt: skip
    heard = frame_from_rows(
        [(r.sender, as_utc(r.received_at), r.intent) for r in reply_rows],
        {"recipient": pl.String, "received_at": UTC_US, "intent": pl.String},
    )
    paid = frame_from_rows(
        [(as_utc(p.paid_at), p.amount) for p in pay_rows], {"paid_at": UTC_US, "amount": pl.Int64}
    )
    made = frame_from_rows([(p.status,) for p in promise_rows], {"status": pl.String})
    return messages, touches, heard, paid, made


# --- attribution --------------------------------------------------------------------------

GROUP = ["step", "template", "variant"]


def _per_message(
    messages: pl.DataFrame, touches: pl.DataFrame, heard: pl.DataFrame
) -> pl.DataFrame:
    """One row per message with its outcomes: paid within 1/3/7 days, amount, reply intents."""
    payments_by_message = touches.group_by("outbox_id").agg(
        *[(pl.col("hours_before") <= 24 * d).any().alias(f"paid_{d}d") for d in (1, 3, 7)],
        pl.col("amount").sum().alias("recovered"),
    )
    sent = messages.filter(pl.col("status").is_in(LEFT)).select("outbox_id", "recipient", "sent_at")
    # A reply belongs to the last message sent to its number in the 3 days before it.
    attributed = (
        heard.join(sent, on="recipient")
        .filter(
            (pl.col("sent_at") <= pl.col("received_at"))
            & (pl.col("received_at") - pl.col("sent_at") <= REPLY_WINDOW)
        )
        .sort("sent_at")
        .group_by("recipient", "received_at", "intent")
        .agg(pl.col("outbox_id").last())
        .group_by("outbox_id")
        .agg(
            pl.len().alias("replies"),
            (pl.col("intent") == "opt_out").any().alias("opted_out"),
            (pl.col("intent") == "complaint").any().alias("complained"),
            pl.col("intent").alias("intents"),
        )
    )
    return (
        messages.join(payments_by_message, on="outbox_id", how="left")
        .join(attributed, on="outbox_id", how="left")
        .with_columns(
            *[pl.col(f"paid_{d}d").fill_null(False) for d in (1, 3, 7)],
            pl.col("recovered").fill_null(0),
            pl.col("replies").fill_null(0),
            pl.col("opted_out").fill_null(False),
            pl.col("complained").fill_null(False),
            pl.col("status").is_in(LEFT).alias("left"),
            (pl.col("status") == "held").alias("held"),
        )
    )


def _attribution(
    messages: pl.DataFrame,
    touches: pl.DataFrame,
    heard: pl.DataFrame,
    price: Decimal,
    digits: int,
) -> pl.DataFrame:
    if messages.is_empty():
        return pl.DataFrame(schema={c: pl.String for c in GROUP})
    each = _per_message(messages, touches, heard)
    intents: dict[tuple[Any, ...], dict[str, int]] = {}
    for *key, intent in (
        each.filter(pl.col("left") & pl.col("intents").is_not_null())
        .explode("intents")
        .select(*GROUP, "intents")
        .iter_rows()
    ):
        counts = intents.setdefault(tuple(key), {})
        counts[intent] = counts.get(intent, 0) + 1
    unit_price = float(price) * 10**digits  # minor units per billing unit
    table = (
        each.group_by(GROUP)
        .agg(
            pl.len().alias("planned"),
            pl.col("held").sum().alias("control"),
            pl.col("left").sum().alias("sent"),
            (pl.col("status") == "delivered").sum().alias("delivered"),
            pl.col("replies").filter(pl.col("left")).sum().alias("replied"),
            pl.col("opted_out").filter(pl.col("left")).sum().alias("opted_out"),
            pl.col("complained").filter(pl.col("left")).sum().alias("complained"),
            *[pl.col(f"paid_{d}d").filter(pl.col("left")).sum().alias(f"paid_{d}d") for d in (1, 3, 7)],
            pl.col("recovered").filter(pl.col("left")).sum().alias("recovered"),
            pl.col("billing_units").filter(pl.col("left")).sum().alias("billing_units"),
        )
        .with_columns((pl.col("billing_units") * unit_price).round(0).cast(pl.Int64).alias("cost"))
        .with_columns(
            # Cost per 1,000 of money recovered, in money (cost and recovered are both minor units).
            pl.when(pl.col("recovered") > 0)
            .then((pl.col("cost") / pl.col("recovered") * 1000).round(4))
            .otherwise(None)
            .alias("cost_per_1000_recovered")
        )
        .sort(GROUP)
    )  # fmt: skip
    return table.with_columns(
        pl.Series(
            "by_intent",
            [json.dumps(intents.get(tuple(k), {}), ensure_ascii=False)
             for k in table.select(GROUP).iter_rows()],
            dtype=pl.String,
        )
    )  # fmt: skip


# --- uplift -------------------------------------------------------------------------------


def _members(messages: pl.DataFrame, touches: pl.DataFrame, window_days: int) -> pl.DataFrame:
    """Each customer once per step: the first sent or held message of the step in the range."""
    first = (
        messages.filter(pl.col("status").is_in((*LEFT, "held")))
        .sort("plan_date", "outbox_id")
        .unique(["step", "customer_id"], keep="first", maintain_order=True)
    )
    hours = 24 * window_days
    won = (
        touches.filter(pl.col("hours_before") <= hours)
        .group_by("outbox_id")
        .agg(pl.col("amount").sum().alias("amount"))
    )
    return first.join(won, on="outbox_id", how="left").with_columns(
        pl.col("amount").is_not_null().alias("paid"),
        pl.col("amount").fill_null(0),
        (pl.col("status") == "held").alias("control"),
    )


def _uplift(
    messages: pl.DataFrame, touches: pl.DataFrame, window_days: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if messages.is_empty():
        return [], []
    members = _members(messages, touches, window_days)
    out, variants = [], []
    for (step,), group in members.group_by(["step"], maintain_order=True):
        treated, held = group.filter(~pl.col("control")), group.filter(pl.col("control"))
        rate = uplift.compare_rates(
            int(treated["paid"].sum()), treated.height, int(held["paid"].sum()), held.height
        )
        amount = uplift.compare_means(
            [float(x) for x in treated["amount"]], [float(x) for x in held["amount"]]
        )
        out.append(
            {"step": step, "pay_rate": rate.as_dict(), "recovered_per_member": amount.as_dict()}
        )
        by_variant = {v: g for (v,), g in treated.group_by(["variant"])}
        if len(by_variant) > 1:
            champion = by_variant[min(by_variant)]
            for v, g in sorted(by_variant.items()):
                if v == min(by_variant):
                    continue
                c = uplift.compare_rates(
                    int(g["paid"].sum()), g.height, int(champion["paid"].sum()), champion.height
                )
                m = uplift.compare_means(
                    [float(x) for x in g["amount"]], [float(x) for x in champion["amount"]]
                )
                variants.append({"step": step, "challenger": v, "champion": min(by_variant),
                                 "template": g["template"][0], "pay_rate": c.as_dict(),
                                 "recovered_per_member": m.as_dict()})  # fmt: skip
    return sorted(out, key=lambda r: str(r["step"])), variants


# --- KPIs ---------------------------------------------------------------------------------


def _month_edges(start: date, end: date) -> list[tuple[date, date]]:
    edges, day = [], start
    while True:
        nxt = _add_month(day)
        if nxt > end:
            break
        edges.append((day, nxt))
        day = nxt
    return edges or ([(start, end)] if end > start else [])


def _add_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _roll_rates(
    engine: Engine, settings: Settings, start: date, end: date
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    order = [b.name for b in settings.ledger.buckets] + ["paid off"]
    matrices, cured, overdue = [], 0, 0
    positions: dict[date, pl.DataFrame] = {}

    def on(day: date) -> pl.DataFrame:
        # Each month's end is the next one's start: read every day once.
        if day not in positions:
            positions[day] = loan_positions(engine, day, settings)
        return positions[day]

    for a, b in _month_edges(start, end):
        before = on(a).filter(~pl.col("paid_off"))
        after = on(b)
        moved = before.select("loan_id", pl.col("bucket").alias("from"), pl.col("dpd").alias("dpd_from")).join(
            after.select("loan_id", pl.when(pl.col("paid_off")).then(pl.lit("paid off"))
                         .otherwise(pl.col("bucket")).alias("to"), pl.col("dpd").alias("dpd_to")),
            on="loan_id",
        )  # fmt: skip
        counts = moved.group_by("from", "to").agg(pl.len().alias("loans"))
        totals = dict(moved.group_by("from").agg(pl.len()).iter_rows())
        cells = {(f, t): n for f, t, n in counts.iter_rows()}
        rows = [
            {"from": f, "loans": totals.get(f, 0),
             **{t: round(cells.get((f, t), 0) / totals[f], 4) if totals.get(f) else 0.0 for t in order}}
            for f in order[:-1]
        ]  # fmt: skip
        matrices.append(
            {"from_date": a.isoformat(), "to_date": b.isoformat(), "columns": order, "rows": rows}
        )
        late = moved.filter(pl.col("dpd_from") > 0)
        overdue += late.height
        cured += late.filter(pl.col("dpd_to") == 0).height
    cure = {"overdue_at_start": overdue, "cured": cured,
            "cure_rate": round(cured / overdue, 4) if overdue else None}  # fmt: skip
    return matrices, cure


def _promises(made: pl.DataFrame) -> dict[str, Any]:
    counts = dict(made.group_by("status").agg(pl.len()).iter_rows()) if made.height else {}
    kept, broken = counts.get("kept", 0), counts.get("broken", 0)
    return {"made": made.height, "kept": kept, "broken": broken, "pending": counts.get("pending", 0),
            "kept_rate": round(kept / (kept + broken), 4) if kept + broken else None}  # fmt: skip


def _delivery(messages: pl.DataFrame) -> pl.DataFrame:
    schema = {"channel": pl.String, "provider": pl.String, "sent": pl.UInt32, "delivered": pl.UInt32,
              "undelivered": pl.UInt32, "expired": pl.UInt32, "awaiting": pl.UInt32,
              "delivery_rate": pl.Float64}  # fmt: skip
    gone = messages.filter(
        pl.col("provider").is_not_null()
        & (pl.col("status").is_in(LEFT) | (pl.col("status") == "expired"))
    )
    if gone.is_empty():
        return pl.DataFrame(schema=schema)
    return (
        gone.group_by("channel", "provider")
        .agg(
            pl.len().alias("sent"),
            (pl.col("status") == "delivered").sum().alias("delivered"),
            (pl.col("status") == "undelivered").sum().alias("undelivered"),
            (pl.col("status") == "expired").sum().alias("expired"),
            (pl.col("status") == "sent").sum().alias("awaiting"),
        )
        .with_columns(
            (pl.col("delivered") / (pl.col("sent") - pl.col("awaiting")))
            .round(4)
            .alias("delivery_rate")
        )
        .sort("channel", "provider")
    )


def _templates(steps: pl.DataFrame) -> pl.DataFrame:
    if steps.is_empty() or "sent" not in steps.columns:
        return pl.DataFrame(schema={"template": pl.String})
    return (
        steps.group_by("template")
        .agg(pl.col("sent").sum(), pl.col("opted_out").sum(), pl.col("complained").sum())
        .with_columns(
            (pl.col("opted_out") / pl.col("sent")).round(4).alias("opt_out_rate"),
            (pl.col("complained") / pl.col("sent")).round(4).alias("complaint_rate"),
        )
        .sort("template")
    )


def _daily(
    messages: pl.DataFrame, paid: pl.DataFrame, start: date, end: date, zone: ZoneInfo
) -> pl.DataFrame:
    days = pl.DataFrame({"day": pl.date_range(start, end, "1d", eager=True)})
    volumes = messages.group_by(pl.col("plan_date").alias("day")).agg(
        pl.len().alias("planned"),
        (pl.col("status") == "held").sum().alias("held"),
        pl.col("status").is_in(LEFT).sum().alias("sent"),
        (pl.col("status") == "delivered").sum().alias("delivered"),
    )
    money = paid.group_by(
        pl.col("paid_at").dt.convert_time_zone(str(zone)).dt.date().alias("day")
    ).agg(pl.len().alias("payments"), pl.col("amount").sum().alias("collected"))
    return (
        days.join(volumes, on="day", how="left")
        .join(money, on="day", how="left")
        .fill_null(0)
        .sort("day")
    )
