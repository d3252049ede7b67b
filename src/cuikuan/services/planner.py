"""The daily plan: for an as-of date, who gets which message, when, and why not.

    result = make_plan(engine, settings, date(2026, 11, 29))            # writes the outbox
    result = make_plan(engine, settings, day, dry_run=True)              # writes nothing
    result = make_plan(engine, settings, day, dry_run=True, only_customer="C001")   # explain

The strategy is evaluated set-at-a-time (domain.planning); the contact policy then decides each
chosen message in order of urgency (most urgent step first, then the most overdue), so when a
number shared by several borrowers has room for one message, the most urgent borrower gets it.
Re-running a plan for the same date adds nothing: one row per customer, step and date.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, Select, select
from sqlalchemy.dialects import postgresql, sqlite

from cuikuan.domain import planning, policy, sms
from cuikuan.domain.message_context import Borrower, LoanFacts, build_context
from cuikuan.domain.money import currency_digits
from cuikuan.domain.strategy import Strategy, ordered_steps
from cuikuan.domain.templates import Renderer, TemplateFile, TemplateProblem
from cuikuan.domain.tips import with_tip
from cuikuan.errors import InputError, NotFound
from cuikuan.services import messages
from cuikuan.services.arrangements import plan_view, settle_arrangements
from cuikuan.services.guardrail import check_templates_guardrail
from cuikuan.services.portfolio import loan_positions
from cuikuan.services.promises import settle
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.store.bulk import frame_from_rows
from cuikuan.store.ledger_reads import read_frame
from cuikuan.store.schema import customer_phones, customers, opt_outs, outbox, pauses
from cuikuan.store.times import as_utc

LIVE = ("planned", "claimed", "sending", "sent", "delivered", "undelivered", "uncertain")
HISTORY_DAYS = 35


@dataclass
class PlanResult:
    as_of: date
    candidates: pl.DataFrame  # one row per person with a matching step, with status and reason
    evaluated: pl.DataFrame  # one row per open loan with its step matches (explain reads it)
    strategy: Strategy
    written: int = 0
    summary: pl.DataFrame = field(default_factory=pl.DataFrame)


def make_plan(
    engine: Engine,
    settings: Settings,
    as_of: date,
    *,
    dry_run: bool = False,
    only_customer: str | None = None,
    now: datetime | None = None,
) -> PlanResult:
    now = now or datetime.now(UTC)
    strategy = load_strategy(settings)
    digits = currency_digits(settings.defaults.currency)
    people = _customers(engine, only_customer)
    positions = loan_positions(engine, as_of, settings).filter(~pl.col("paid_off"))
    positions = positions.join(people.select("customer_id", "customer", "tags"), on="customer_id")
    history = _history(engine, as_of, people if only_customer else None)
    promised = settle(engine, settings, as_of, write=not dry_run and only_customer is None, now=now)
    on_plan = settle_arrangements(
        engine, settings, as_of, write=not dry_run and only_customer is None, now=now
    )
    # Reminders follow a current plan's dates and its loan is never escalated (arrangements).
    positions = plan_view(positions, on_plan, as_of, settings.ledger.buckets[0].name)
    people = people.with_columns(
        pl.col("customer_id").is_in(sorted(promised)).alias("promise_pending"),
    ).join(_paused(engine, as_of), on="customer_id", how="left")
    loans = positions.with_columns(_first_delinquency(positions, history, strategy, as_of))
    evaluated = planning.evaluate(loans, strategy, digits)
    chosen = planning.choose_steps(evaluated, strategy).join(
        people.drop("tags", "customer"), on="customer_id"
    )
    blocked = check_templates_guardrail(
        engine, settings, now, write=not dry_run and only_customer is None
    )
    decided = _decide(chosen, history, settings, as_of, blocked)
    rendered = _render(decided, settings)
    result = PlanResult(as_of, rendered, evaluated, strategy)
    result.summary = summarise(rendered, settings)
    if not dry_run and only_customer is None:
        result.written = _write(engine, rendered, as_of, now)
    return result


# --- reading ------------------------------------------------------------------------------


def _sql(conn: Connection, statement: Select[Any]) -> str:
    """A statement as the database's own SQL text, values inlined (for `read_frame`)."""
    return str(statement.compile(conn, compile_kwargs={"literal_binds": True}))


def _customers(engine: Engine, only: str | None) -> pl.DataFrame:
    query = select(
        customers.c.id,
        customers.c.external_id,
        customers.c.name,
        customers.c.email,
        customers.c.locale,
        customers.c.timezone,
        customers.c.tags,
        customers.c.flags,
        customers.c.attributes,
    )
    phones_sql = select(
        customer_phones.c.customer_id, customer_phones.c.e164, customer_phones.c.kind
    ).order_by(customer_phones.c.customer_id, customer_phones.c.position)
    if only is not None:
        query = query.where(customers.c.external_id == only)
        phones_sql = phones_sql.where(
            customer_phones.c.customer_id.in_(
                select(customers.c.id).where(customers.c.external_id == only).scalar_subquery()
            )
        )
    person_schema = {"customer_id": pl.Int64, "customer": pl.String, "name": pl.String, "email": pl.String,
                     "locale": pl.String, "timezone": pl.String, "tags": pl.String, "flags": pl.String,
                     "attributes": pl.String}  # fmt: skip
    phone_schema = {"customer_id": pl.Int64, "e164": pl.String, "kind": pl.String}
    with engine.connect() as conn:
        frame = read_frame(conn, _sql(conn, query), person_schema)
        phone_frame = read_frame(conn, _sql(conn, phones_sql), phone_schema)
        opted = conn.execute(select(opt_outs.c.customer_id, opt_outs.c.channel)).all()
    if only is not None and frame.is_empty():
        raise NotFound(f"no customer {only!r} in the ledger")
    lists = phone_frame.group_by("customer_id", maintain_order=True).agg(
        pl.col("e164").alias("phones"),
        pl.col("e164").filter(pl.col("kind").is_in(["mobile", "fixed_or_mobile"])).alias("mobiles"),
    )
    opted_frame = (
        frame_from_rows([tuple(r) for r in opted], {"customer_id": pl.Int64, "channel": pl.String})
        .group_by("customer_id")
        .agg(pl.col("channel").alias("opted_out"))
    )
    empty = pl.lit([], dtype=pl.List(pl.String))
    return (
        frame.with_columns(
            pl.col("tags").str.json_decode(pl.List(pl.String)),
            pl.col("flags").str.json_decode(pl.List(pl.String)),
        )
        .join(lists, on="customer_id", how="left")
        .join(opted_frame, on="customer_id", how="left")
        .with_columns(pl.col("phones", "mobiles", "opted_out").fill_null(empty))
    )


def _paused(engine: Engine, as_of: date) -> pl.DataFrame:
    """Customers whose automated reminders are paused on `as_of`, with the latest reason."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(pauses.c.customer_id, pauses.c.reason)
            .where(pauses.c.until >= as_of)
            .order_by(pauses.c.created_at)
        ).all()
    latest = {cid: reason for cid, reason in rows}
    return frame_from_rows(list(latest.items()), {"customer_id": pl.Int64, "paused": pl.String})


def _history(engine: Engine, as_of: date, only: pl.DataFrame | None) -> pl.DataFrame:
    """Messages that count against caps (sent, or planned and not yet settled), recent ones."""
    since = as_of - timedelta(days=HISTORY_DAYS)
    query = select(
        outbox.c.customer_id,
        outbox.c.recipient,
        outbox.c.step,
        outbox.c.plan_date,
        outbox.c.idempotency_key,
        outbox.c.sent_at,
        outbox.c.earliest_at,
        outbox.c.status,
        outbox.c.control,
    ).where(outbox.c.plan_date >= since)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return frame_from_rows(
        [(r.customer_id, r.recipient, r.step, r.plan_date, r.idempotency_key, as_utc(r.sent_at or r.earliest_at), r.status, bool(r.control)) for r in rows],
        {"customer_id": pl.Int64, "recipient": pl.String, "step": pl.String, "plan_date": pl.Date,
                "key": pl.String, "at": pl.Datetime("us", "UTC"), "status": pl.String, "control": pl.Boolean},
    )  # fmt: skip


def _first_delinquency(
    positions: pl.DataFrame, history: pl.DataFrame, strategy: Strategy, as_of: date
) -> pl.Expr:
    """A person is a repeat delinquent when an overdue step reached them before this episode."""
    overdue_steps = [s.id for s in strategy.steps if s.targets_overdue]
    earlier = (
        history.filter(pl.col("step").is_in(overdue_steps))
        .group_by("customer_id")
        .agg(pl.col("plan_date").min().alias("_first"))
    )
    start = positions.group_by("customer_id").agg(
        (pl.lit(as_of) - pl.duration(days=pl.col("dpd").max())).alias("_start")
    )
    repeat = (
        start.join(earlier, on="customer_id")
        .filter(pl.col("_first") < pl.col("_start"))
        .get_column("customer_id")
    )
    return (~pl.col("customer_id").is_in(repeat.to_list())).alias("first_delinquency")


# --- deciding -----------------------------------------------------------------------------


@dataclass
class _Caps:
    """What each person and each number has already received (history plus this plan)."""

    by_customer: dict[int, list[datetime]]
    by_number: dict[str, list[datetime]]
    steps: dict[int, list[tuple[str, date]]]
    keys: set[str]


def _caps(history: pl.DataFrame) -> _Caps:
    caps = _Caps(
        defaultdict(list),
        defaultdict(list),
        defaultdict(list),
        set(history.get_column("key").to_list()),
    )
    for cid, recipient, step, day, _, at, status, control in history.iter_rows():
        if control or status not in LIVE or at is None:
            continue
        caps.by_customer[cid].append(at)
        caps.by_number[recipient].append(at)
        caps.steps[cid].append((step, day))
    return caps


def idempotency_key(customer: str, step: str, day: date) -> str:
    return f"{customer}|{step}|{day.isoformat()}"


def _decide(
    chosen: pl.DataFrame,
    history: pl.DataFrame,
    settings: Settings,
    as_of: date,
    blocked: dict[str, str],
) -> pl.DataFrame:
    contact = settings.policy.contact_policy()
    caps = _caps(history)
    zone_cache = policy.ZoneCache(settings.defaults.timezone)
    window_cache: dict[tuple[date, tuple[str, ...]], tuple[datetime, datetime] | None] = {}
    # Most urgent first; ties broken by customer so every run decides the same way.
    ordered = chosen.sort(
        ["step_index", "dpd", "outstanding", "customer_id"], descending=[False, True, True, False]
    )
    out = []
    for row in ordered.iter_rows(named=True):
        if row["template"] in blocked:
            decision = _blocked(row, blocked[row["template"]])
        else:
            decision = _decide_one(row, caps, contact, settings, as_of, zone_cache, window_cache)
        out.append(decision)
    schema: dict[str, pl.DataType] = {"status": pl.String(), "reason": pl.String(), "recipient": pl.String(), "earliest_at": pl.Datetime("us", "UTC"),
              "latest_at": pl.Datetime("us", "UTC"), "send_day": pl.Date(), "zones": pl.String(), "trail": pl.String()}  # fmt: skip
    return pl.concat([ordered, frame_from_rows(out, schema)], how="horizontal")


def _blocked(row: dict[str, Any], why: str) -> tuple[object, ...]:
    reason = f"template {row['template']} paused by the guardrail: {why}"
    trail = [f"step {row['step']} matched loan {row['external_id']}", reason]
    return ("suppressed", reason, None, None, None, None, "", json.dumps(trail, ensure_ascii=False))


def _decide_one(
    row: dict[str, Any],
    caps: _Caps,
    contact: policy.ContactPolicy,
    settings: Settings,
    as_of: date,
    zone_cache: policy.ZoneCache,
    window_cache: dict[tuple[date, tuple[str, ...]], tuple[datetime, datetime] | None],
) -> tuple[object, ...]:
    cid = int(row["customer_id"])
    step, channel = str(row["step"]), str(row["channel"])
    trail = [
        f"step {step} matched loan {row['external_id']} (DPD {row['dpd']}, days to due {row['days_to_due']})"
    ]
    if row.get("on_plan"):
        trail.append("on a current instalment plan: due dates and amounts are the plan's")
    phones = list(row["phones"] or [])
    recipient = (list(row["mobiles"] or [])[:1] or [None])[0] if channel == "sms" else row["email"]
    zones = zone_cache.zones(row["timezone"], phones)

    def done(
        status: str,
        reason: str | None,
        lo: datetime | None = None,
        hi: datetime | None = None,
        day: date | None = None,
    ) -> tuple[object, ...]:
        if reason:
            trail.append(reason)
        return (
            status,
            reason,
            recipient,
            lo,
            hi,
            day,
            ",".join(zones),
            json.dumps(trail, ensure_ascii=False),
        )

    key = idempotency_key(str(row["customer"]), step, as_of)
    if key in caps.keys:
        return done("exists", "already planned for this date")
    reasons = policy.suppression_reasons(
        row["flags"] or [],
        row["opted_out"] or [],
        channel,
        bool(row["paid_off"]),
        promise_pending=bool(row["promise_pending"]),
    )
    if reasons:
        return done("suppressed", f"suppressed: {reasons[0]}")
    if row["paused"]:
        return done("suppressed", f"suppressed: paused after a reply ({row['paused']})")
    if recipient is None:
        return done(
            "suppressed", "no usable phone number" if channel == "sms" else "no e-mail address"
        )
    day = policy.apply_holidays(as_of, row["holidays"], contact.holiday_calendar)
    if day is None:
        return done("skipped", f"holiday: {as_of} is not a working day and the step skips holidays")
    if day != as_of:
        trail.append(f"holiday: moved to the next working day {day}")
    wkey = (day, tuple(zones))
    if wkey not in window_cache:
        window_cache[wkey] = policy.allowed_window(day, zones, contact)
    window = window_cache[wkey]
    if window is None:
        return done("suppressed", f"no contact window common to the zones {', '.join(zones)}")
    lo, hi = window
    trail.append(
        f"window {lo:%Y-%m-%d %H:%M}-{hi:%H:%M} UTC ({contact.window_start:%H:%M}-{contact.window_end:%H:%M} in {', '.join(zones)})"
    )
    repeat = int(row["repeat_every_days"])
    if any(s == step and (as_of - d).days < repeat for s, d in caps.steps.get(cid, [])):
        return done("suppressed", f"step {step} repeats at most every {repeat} days")
    if row["control"]:
        return done("held", "control group: held back to measure the step", lo, hi, day)
    sent = sorted(caps.by_customer.get(cid, []) + caps.by_number.get(str(recipient), []))
    earliest = max([lo, *(s + contact.min_gap for s in sent[-1:])])
    if earliest >= hi:
        return done(
            "suppressed",
            f"cap: at least {contact.min_gap.total_seconds() / 3600:g} h between messages",
        )
    reason = policy.cap_reason(sent, earliest, contact, zones[0])
    if reason:
        return done("suppressed", reason)
    caps.by_customer[cid].append(earliest)
    caps.by_number[str(recipient)].append(earliest)
    caps.steps[cid].append((step, as_of))
    caps.keys.add(key)
    return done("planned", None, earliest, hi, day)


# --- rendering and writing ----------------------------------------------------------------


def _render(decided: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    templates, problems = messages.load_templates(messages.templates_dir(settings))
    if problems:
        raise InputError("\n".join(p.render() for p in problems))
    by_key: dict[tuple[str, str], TemplateFile] = {t.key: t for t in templates}
    renderer = Renderer({t.path: t for t in templates})
    lender = messages.lender_facts(settings)
    tips = {loc: messages.load_tips(loc) for loc in settings.templates.locales}
    texts: list[str | None] = []
    segments: list[int] = []
    units: list[int] = []
    for row in decided.iter_rows(named=True):
        if row["status"] not in ("planned", "held"):
            texts.append(None)
            segments.append(0)
            units.append(0)
            continue
        locale = (
            row["locale"]
            if (row["template"], row["locale"]) in by_key
            else settings.defaults.locale
        )
        template = by_key[(row["template"], locale)]
        attrs = {
            k: str(v) for k, v in json.loads(row["attributes"] or "{}").items() if v is not None
        }
        borrower = Borrower(
            row["name"], row["recipient"] if row["channel"] == "sms" else None, attrs
        )
        facts = LoanFacts(row["external_id"], None, row["currency"], row["overdue_amount"], row["outstanding"],
                          row["next_due_amount"], row["next_due_date"], row["days_to_due"], row["dpd"])  # fmt: skip
        try:
            text = renderer.render(template, build_context(borrower, facts, lender, locale))
        except TemplateProblem as exc:
            raise InputError(str(exc)) from None
        if settings.templates.tips and template.tone in settings.templates.tips_on_tones:
            text = with_tip(text, tips.get(locale, []), f"{row['customer']}/{row['send_day']}")
        texts.append(text)
        segments.append(sms.segments(text))
        units.append(sms.cn_billing_units(text))
    return decided.with_columns(
        pl.Series("text", texts, dtype=pl.String),
        pl.Series("segments", segments, dtype=pl.Int64),
        pl.Series("billing_units", units, dtype=pl.Int64),
    )


def _write(engine: Engine, rendered: pl.DataFrame, as_of: date, now: datetime) -> int:
    rows = [
        {
            "idempotency_key": idempotency_key(r["customer"], r["step"], as_of),
            "plan_date": as_of,
            "customer_id": r["customer_id"],
            "loan_id": r["loan_id"],
            "step": r["step"],
            "template": r["template"],
            "variant": r["variant"],
            "channel": r["channel"],
            "recipient": r["recipient"],
            "text": r["text"],
            "control": int(r["control"]),
            "earliest_at": r["earliest_at"],
            "latest_at": r["latest_at"],
            "segments": r["segments"],
            "billing_units": r["billing_units"],
            "status": r["status"],
            "reason": r["reason"],
            "trail": r["trail"],
            "created_at": now,
            "updated_at": now,
        }
        for r in rendered.filter(pl.col("status").is_in(["planned", "held"])).iter_rows(named=True)
    ]
    if not rows:
        return 0
    with engine.begin() as conn:
        insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(outbox)
        statement = insert.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(
            outbox.c.id
        )
        # RETURNING lists only the rows actually inserted, on both databases.
        return len(conn.execute(statement, rows).all())


def summarise(rendered: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Per step and variant: candidates, control, suppressed, to send, segments, estimated cost."""
    price = settings.plan.price_per_billing_unit
    if rendered.height == 0:
        return pl.DataFrame()
    return (
        rendered.group_by("step_index", "step", "variant", "template")
        .agg(
            pl.len().alias("candidates"),
            (pl.col("status") == "held").sum().alias("control"),
            pl.col("status").is_in(["suppressed", "skipped"]).sum().alias("suppressed"),
            (pl.col("status") == "planned").sum().alias("to_send"),
            (pl.col("status") == "exists").sum().alias("already_planned"),
            pl.col("segments").filter(pl.col("status") == "planned").sum().alias("segments"),
            pl.col("billing_units")
            .filter(pl.col("status") == "planned")
            .sum()
            .alias("billing_units"),
        )
        .with_columns(
            (pl.col("billing_units").cast(pl.Float64) * float(price))
            .round(2)
            .alias("estimated_cost")
        )
        .sort("step_index", "variant")
        .drop("step_index")
    )


def suppressed_reasons(rendered: pl.DataFrame) -> pl.DataFrame:
    """How many were stopped by each reason (the reason's first words), per step."""
    return (
        rendered.filter(pl.col("status").is_in(["suppressed", "skipped"]))
        .with_columns(pl.col("reason").str.extract(r"^([^:]+(?::\s*[a-z_]+)?)", 1).alias("rule"))
        .group_by("step", "rule")
        .agg(pl.len().alias("count"))
        .sort("step", "count", descending=[False, True])
    )


def steps_of(strategy: Strategy) -> list[str]:
    return [s.id for s in ordered_steps(strategy)]


def planned_row(engine: Engine, customer: str, step: str, day: date) -> dict[str, Any] | None:
    """The outbox row an earlier plan wrote for this customer, step and date, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox).where(outbox.c.idempotency_key == idempotency_key(customer, step, day))
        ).first()
    return dict(row._mapping) if row is not None else None
