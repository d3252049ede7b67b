"""The report: what each step brought in over its control group, and the collections KPIs.

    report = build_report(engine, settings, date(2026, 11, 30), date(2026, 12, 29), now=now)

Uplift per step (services.report_members): intention to treat, each customer once, both arms'
pay windows starting at the opening of the contact window; pay rate and amount per member with
intervals and a plain verdict (domain.uplift), the treated members' sent and suppressed shares,
incremental money with its interval, its cost and the cost per unit of it; variants against the
step's first (champion); and a weekly trend.

The funnel per step, in the strategy's order: stopped before the control draw, by rule (from
plan_tallies), held back, and what became of the treated rows (stopped by a cap or the lint
after the draw, re-checked at send time, sent, delivered, expired, failed), by rule.

Messages per step, template and variant: planned, held back, sent, delivered, replies by
intent (a reply counts for the last message sent to that number in the 3 days before it),
opt-outs, complaints, the share followed by a payment within 1, 3 and 7 days (a payment may
follow several messages: these are not added up into money), billing units and cost.

KPIs: recovery per bucket in money (collected against overdue at the start), roll rates between
buckets in counts and in balances, cure rate, promise kept rate, delivery per channel and gateway,
opt-out and complaint rates per template, daily volumes, and what changed in the strategy during
the range (templates first or last used, templates paused by the guardrail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, select

from cuikuan.domain.decide import REASON_KIND
from cuikuan.domain.money import currency_digits
from cuikuan.domain.strategy import ordered_steps
from cuikuan.errors import ConfigError, InputError
from cuikuan.services.attribution import LEFT
from cuikuan.services.portfolio import loan_positions
from cuikuan.services.report_members import PAYS, ROWS, compare_steps, step_members, weekly
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.store import plan_tallies, sqlite_worker
from cuikuan.store.bulk import frame_from_rows
from cuikuan.store.schema import (
    loans,
    outbox,
    payment_touches,
    payments,
    promises,
    replies,
    template_pauses,
)
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
    funnel: list[dict[str, Any]]
    weekly: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    roll_rates: list[dict[str, Any]]
    cure: dict[str, Any]
    promises: dict[str, Any]
    delivery: pl.DataFrame
    templates: pl.DataFrame
    daily: pl.DataFrame
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(), "currency": self.currency,
            "window_days": self.window_days, "funnel": self.funnel, "uplift": self.uplift,
            "variants": self.variants, "weekly": self.weekly, "steps": self.steps.to_dicts(),
            "buckets": self.buckets, "roll_rates": self.roll_rates, "cure": self.cure,
            "promises": self.promises, "delivery": self.delivery.to_dicts(),
            "templates": self.templates.to_dicts(), "daily": self.daily.to_dicts(),
            "changes": self.changes, "notes": self.notes,
        }  # fmt: skip


def build_report(
    engine: Engine,
    settings: Settings,
    start: date,
    end: date,
    window_days: int = 3,
    *,
    now: datetime | None = None,
) -> Report:
    """`now`: members whose pay window has not closed by then are counted apart (None: every
    window counts as closed)."""
    sqlite_worker.warm(engine)  # the book's positions are read at every month's edges
    zone = ZoneInfo(settings.defaults.timezone)
    digits = currency_digits(settings.defaults.currency)
    read, order = _reading(engine, settings, start, end, window_days)
    messages = read.rows.filter(pl.col("plan_date") >= start)
    price = Decimal(settings.plan.price_per_billing_unit)
    members = step_members(read.rows, read.pays, start, window_days, now)
    comparisons, variants = compare_steps(members, order, price, digits)
    rolls, cure = _roll_rates(engine, settings, start, end)
    steps = _attribution(messages, read.touches, read.heard, price, digits, order)
    lo = datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    in_range = read.pays_by_loan.filter((pl.col("paid_at") >= lo) & (pl.col("paid_at") < hi))
    report = Report(
        start, end, settings.defaults.currency, digits, window_days, steps,
        comparisons, variants, _funnel(messages, read.tallies, order), weekly(members),
        _buckets(engine, settings, start, in_range), rolls, cure,
        _promises(read.made), _delivery(messages), _templates(steps),
        _daily(messages, in_range, start, end, zone), _changes(messages, read.paused, start, end),
    )  # fmt: skip
    if messages.is_empty():
        report.notes.append("no messages were planned in this range")
    still = sum(u["open_windows"] for u in comparisons)
    if still:
        report.notes.append(
            f"{still} member(s) chosen in the last {window_days} day(s) have a pay window still "
            "open: they are not compared yet"
        )
    return report


def template_rates(
    engine: Engine, settings: Settings, start: date, end: date
) -> list[dict[str, Any]]:
    """Per template over the range: messages sent, and the share answered, opted out and
    complained about (a reply counts for the last message sent to its number in the 3 days
    before it): the report's own reading and attribution, without the rest of the report."""
    read, order = _reading(engine, settings, start, end, 3)
    messages = read.rows.filter(pl.col("plan_date") >= start)
    digits = currency_digits(settings.defaults.currency)
    price = Decimal(settings.plan.price_per_billing_unit)
    steps = _attribution(messages, read.touches, read.heard, price, digits, order)
    return _templates(steps).to_dicts()


def members(
    engine: Engine,
    settings: Settings,
    start: date,
    end: date,
    window_days: int = 3,
    *,
    now: datetime | None = None,
) -> pl.DataFrame:
    """The members the uplift compares (report_members.MEMBERS): each step's customers in the
    range, once, with their arm and outcome."""
    read, _ = _reading(engine, settings, start, end, window_days)
    return step_members(read.rows, read.pays, start, window_days, now)


def _reading(
    engine: Engine, settings: Settings, start: date, end: date, window_days: int
) -> tuple[_Read, list[str]]:
    """What the report reads, from the strategy's longest repeat before `start`, and the steps
    in the strategy's order."""
    order, lookback = _lifecycle(settings)
    zone = ZoneInfo(settings.defaults.timezone)
    return _read(engine, start - timedelta(days=lookback), start, end, window_days, zone), order


def _lifecycle(settings: Settings) -> tuple[list[str], int]:
    """The steps in the strategy's order, and its longest repeat (the members' look-back)."""
    try:
        steps = ordered_steps(load_strategy(settings))
    except (ConfigError, InputError):
        return [], 7  # the report still reads what was sent; steps alphabetically
    return [s.id for s in steps], max([s.repeat_every_days for s in steps], default=1)


# --- reading ------------------------------------------------------------------------------


@dataclass
class _Read:
    rows: pl.DataFrame  # ROWS, from the look-back's first day
    touches: pl.DataFrame
    heard: pl.DataFrame
    pays: pl.DataFrame  # PAYS
    pays_by_loan: pl.DataFrame
    made: pl.DataFrame
    tallies: pl.DataFrame
    paused: pl.DataFrame


def _read(
    engine: Engine, first: date, start: date, end: date, window_days: int, zone: ZoneInfo
) -> _Read:
    lo = datetime.combine(start, time(0), tzinfo=zone)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    o = outbox.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(o.id, o.customer_id, o.loan_id, o.step, o.template, o.variant, o.channel,
                   o.recipient, o.status, o.provider, o.reason, o.billing_units, o.plan_date,
                   o.sent_at, o.earliest_at, o.opens_at, o.control)
            .where(o.plan_date >= first, o.plan_date <= end)
        ).all()  # fmt: skip
        ids = [r.id for r in rows if r.plan_date >= start]
        touch_rows: list[Any] = []
        for chunk in range(0, len(ids), 5000):
            touch_rows += conn.execute(
                select(payment_touches.c.outbox_id, payment_touches.c.payment_id,
                       payment_touches.c.hours_before)
                .where(payment_touches.c.outbox_id.in_(ids[chunk : chunk + 5000]))
            ).all()  # fmt: skip
        reply_rows = conn.execute(
            select(replies.c.sender, replies.c.received_at, replies.c.intent).where(
                replies.c.received_at >= lo, replies.c.received_at < hi + REPLY_WINDOW
            )
        ).all()
        # Payments from the look-back's first day to the last window's end (a day's margin:
        # a window opens on its send day, which a holiday may put after the plan date).
        pay_rows = conn.execute(
            select(loans.c.customer_id, payments.c.loan_id, payments.c.paid_at, payments.c.amount)
            .join(loans, loans.c.id == payments.c.loan_id)
            .where(
                payments.c.paid_at >= datetime.combine(first, time(0), tzinfo=zone),
                payments.c.paid_at < hi + timedelta(days=window_days + 8),
            )
        ).all()
        promise_rows = conn.execute(
            select(promises.c.status).where(promises.c.made_at >= lo, promises.c.made_at < hi)
        ).all()
        tallies = plan_tallies.read(conn, start, end)
        paused = conn.execute(
            select(template_pauses.c.template, template_pauses.c.since, template_pauses.c.reason)
        ).all()
    frame = frame_from_rows(
        [(r.id, r.customer_id, r.loan_id, r.step, r.template, r.variant, r.channel, r.recipient,
          r.status, r.provider, r.reason, r.billing_units, r.plan_date,
          as_utc(r.sent_at) if r.sent_at else None, as_utc(r.earliest_at),
          as_utc(r.opens_at) if r.opens_at else None, bool(r.control)) for r in rows],
        ROWS,
    )  # fmt: skip
    touches = frame_from_rows(
        [tuple(t) for t in touch_rows],
        {"outbox_id": pl.Int64, "payment_id": pl.Int64, "hours_before": pl.Float64},
    )
    heard = frame_from_rows(
        [(r.sender, as_utc(r.received_at), r.intent) for r in reply_rows],
        {"recipient": pl.String, "received_at": UTC_US, "intent": pl.String},
    )
    by_loan = frame_from_rows(
        [(p.customer_id, p.loan_id, as_utc(p.paid_at), p.amount) for p in pay_rows],
        {"customer_id": pl.Int64, "loan_id": pl.Int64, "paid_at": UTC_US, "amount": pl.Int64},
    )
    made = frame_from_rows([(p.status,) for p in promise_rows], {"status": pl.String})
    pauses = frame_from_rows(
        [(p.template, as_utc(p.since), p.reason) for p in paused],
        {"template": pl.String, "since": UTC_US, "reason": pl.String},
    )
    return _Read(frame, touches, heard, by_loan.select(list(PAYS)), by_loan, made, tallies, pauses)


# --- messages ----------------------------------------------------------------------------

GROUP = ["step", "template", "variant"]


def _per_message(
    messages: pl.DataFrame, touches: pl.DataFrame, heard: pl.DataFrame
) -> pl.DataFrame:
    """One row per message with its outcomes: followed by a payment within 1/3/7 days, reply
    intents."""
    followed = touches.group_by("outbox_id").agg(
        *[(pl.col("hours_before") <= 24 * d).any().alias(f"paid_{d}d") for d in (1, 3, 7)],
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
        messages.join(followed, on="outbox_id", how="left")
        .join(attributed, on="outbox_id", how="left")
        .with_columns(
            *[pl.col(f"paid_{d}d").fill_null(False) for d in (1, 3, 7)],
            pl.col("replies").fill_null(0),
            pl.col("opted_out").fill_null(False),
            pl.col("complained").fill_null(False),
            pl.col("status").is_in(LEFT).alias("left"),
            pl.col("control").alias("held"),
        )
    )


def _attribution(
    messages: pl.DataFrame,
    touches: pl.DataFrame,
    heard: pl.DataFrame,
    price: Decimal,
    digits: int,
    order: list[str],
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
            (~pl.col("control")).sum().alias("planned"),
            pl.col("held").sum().alias("control"),
            pl.col("left").sum().alias("sent"),
            (pl.col("status") == "delivered").sum().alias("delivered"),
            pl.col("replies").filter(pl.col("left")).sum().alias("replied"),
            pl.col("opted_out").filter(pl.col("left")).sum().alias("opted_out"),
            pl.col("complained").filter(pl.col("left")).sum().alias("complained"),
            *[pl.col(f"paid_{d}d").filter(pl.col("left")).sum().alias(f"paid_{d}d") for d in (1, 3, 7)],
            pl.col("billing_units").filter(pl.col("left")).sum().alias("billing_units"),
        )
        .with_columns((pl.col("billing_units") * unit_price).round(0).cast(pl.Int64).alias("cost"))
        .with_columns(_lifecycle_rank(order))
        .sort("_rank", "step", "variant", "template")
        .drop("_rank")
    )  # fmt: skip
    return table.with_columns(
        pl.Series(
            "by_intent",
            [json.dumps(intents.get(tuple(k), {}), ensure_ascii=False)
             for k in table.select(GROUP).iter_rows()],
            dtype=pl.String,
        )
    )  # fmt: skip


def _lifecycle_rank(order: list[str]) -> pl.Expr:
    rank = {s: i for i, s in enumerate(order)}
    return (
        pl.col("step")
        .replace_strict(rank, default=len(order), return_dtype=pl.Int64)
        .alias("_rank")
    )


# --- the funnel ---------------------------------------------------------------------------


def _funnel(
    messages: pl.DataFrame, tallies: pl.DataFrame, order: list[str]
) -> list[dict[str, Any]]:
    """Per step in the lifecycle's order: the candidates stopped before the control draw and
    why, held back, and what became of the treated rows (by status, and why those stopped
    after the draw were stopped)."""
    before = tallies.group_by("step", "rule").agg(pl.col("count").sum())
    after = (
        messages.filter(~pl.col("control") & pl.col("status").is_in(["suppressed", "cancelled"]))
        .with_columns(REASON_KIND.fill_null("").alias("rule"))
        .group_by("step", "rule")
        .agg(pl.len().alias("count"))
    )
    steps = set(messages["step"].to_list()) | set(tallies["step"].to_list())
    out = []
    for step in [s for s in order if s in steps] + sorted(steps - set(order)):
        mine = messages.filter(pl.col("step") == step)
        treated = mine.filter(~pl.col("control"))
        stopped = _rules(before, step)
        statuses = dict(treated.group_by("status").agg(pl.len()).iter_rows())
        out.append({
            "step": step,
            "matched": sum(stopped.values()) + mine.height,
            "stopped_before_draw": sum(stopped.values()),
            "held": mine.height - treated.height,
            "treated": treated.height,
            "sent": sum(statuses.get(s, 0) for s in LEFT),
            "delivered": statuses.get("delivered", 0),
            "suppressed_after_draw": statuses.get("suppressed", 0),
            "statuses": dict(sorted(statuses.items())),
            "before_draw": stopped,
            "after_draw": _rules(after, step),
        })  # fmt: skip
    return out


def _rules(counts: pl.DataFrame, step: str) -> dict[str, int]:
    mine = counts.filter(pl.col("step") == step).sort("count", "rule", descending=[True, False])
    return {str(rule): int(n) for rule, n in mine.select("rule", "count").iter_rows()}


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
        moved = before.select("loan_id", pl.col("bucket").alias("from"), pl.col("dpd").alias("dpd_from"), "outstanding").join(
            after.select("loan_id", pl.when(pl.col("paid_off")).then(pl.lit("paid off"))
                         .otherwise(pl.col("bucket")).alias("to"), pl.col("dpd").alias("dpd_to")),
            on="loan_id",
        )  # fmt: skip
        counts = moved.group_by("from", "to").agg(
            pl.len().alias("loans"), pl.col("outstanding").sum()
        )
        totals = {
            f: (n, m)
            for f, n, m in moved.group_by("from")
            .agg(pl.len(), pl.col("outstanding").sum())
            .iter_rows()
        }
        cells = {(f, t): (n, m) for f, t, n, m in counts.iter_rows()}

        rows = [
            {
                "from": f,
                "loans": totals.get(f, (0, 0))[0],
                **{t: _cell(cells, totals, f, t, 0) for t in order},
            }
            for f in order[:-1]
        ]
        balances = [
            {
                "from": f,
                "outstanding": int(totals.get(f, (0, 0))[1]),
                **{t: _cell(cells, totals, f, t, 1) for t in order},
            }
            for f in order[:-1]
        ]
        matrices.append(
            {
                "from_date": a.isoformat(),
                "to_date": b.isoformat(),
                "columns": order,
                "rows": rows,
                "balances": balances,
            }
        )
        late = moved.filter(pl.col("dpd_from") > 0)
        overdue += late.height
        cured += late.filter(pl.col("dpd_to") == 0).height
    cure = {"overdue_at_start": overdue, "cured": cured,
            "cure_rate": round(cured / overdue, 4) if overdue else None}  # fmt: skip
    return matrices, cure


def _cell(
    cells: dict[tuple[str, str], tuple[int, int]],
    totals: dict[str, tuple[int, int]],
    f: str,
    t: str,
    k: int,
) -> float:
    """The share of bucket `f`'s loans (k=0) or balance (k=1) that moved to `t`."""
    whole = totals.get(f, (0, 0))[k]
    return round(cells.get((f, t), (0, 0))[k] / whole, 4) if whole else 0.0


def _buckets(
    engine: Engine, settings: Settings, start: date, paid: pl.DataFrame
) -> list[dict[str, Any]]:
    """Per bucket at the start: loans, overdue then, collected in the range from those loans
    (minor units), and the share of the overdue collected."""
    at_start = loan_positions(engine, start, settings).filter(~pl.col("paid_off"))
    got = paid.group_by("loan_id").agg(pl.col("amount").sum().alias("collected"))
    per = (
        at_start.select("loan_id", "bucket", "overdue_amount")
        .join(got, on="loan_id", how="left")
        .group_by("bucket")
        .agg(
            pl.len().alias("loans"),
            pl.col("overdue_amount").sum().alias("overdue_at_start"),
            pl.col("collected").fill_null(0).sum().alias("collected"),
        )
    )
    found = {r["bucket"]: r for r in per.iter_rows(named=True)}
    out = []
    for name in [b.name for b in settings.ledger.buckets]:
        r = found.get(name, {"loans": 0, "overdue_at_start": 0, "collected": 0})
        overdue, collected = int(r["overdue_at_start"]), int(r["collected"])
        out.append({"bucket": name, "loans": int(r["loans"]), "overdue_at_start": overdue,
                    "collected": collected,
                    "recovery_rate": round(collected / overdue, 4) if overdue else None})  # fmt: skip
    return out


def _changes(messages: pl.DataFrame, paused: pl.DataFrame, start: date, end: date) -> list[str]:
    """What changed in the strategy during the range, as the outbox shows it: a template (and
    variant) a step began or stopped sending after the step's first or before its last day,
    and templates the guardrail paused. (The strategy file itself keeps no history.)"""
    sending = messages.filter(~pl.col("control"))
    out: list[tuple[date, str]] = []
    if sending.height:
        span = sending.group_by("step").agg(
            pl.col("plan_date").min().alias("a"), pl.col("plan_date").max().alias("b")
        )
        used = (
            sending.group_by("step", "template", "variant")
            .agg(pl.col("plan_date").min().alias("first"), pl.col("plan_date").max().alias("last"))
            .join(span, on="step")
        )
        for step, template, variant, first, last, a, b in used.iter_rows():
            if first > a:
                out.append(
                    (first, f"{first}: step {step} began sending {template} (variant {variant})")
                )
            if last < b:
                out.append((last, f"{last}: step {step} last sent {template} (variant {variant})"))
    for template, since, reason in paused.iter_rows():
        day = since.date()
        if start <= day <= end:
            out.append((day, f"{day}: template {template} paused by the guardrail ({reason})"))
    return [text for _, text in sorted(out)]


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
        .agg(
            pl.col("sent").sum(),
            pl.col("replied").sum(),
            pl.col("opted_out").sum(),
            pl.col("complained").sum(),
        )
        .with_columns(
            (pl.col("replied") / pl.col("sent")).round(4).alias("reply_rate"),
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
